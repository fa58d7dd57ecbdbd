// The host face's main stage (see lib.js).
"use strict";
require("./lib.js").entry(require("./lib.js").main);
