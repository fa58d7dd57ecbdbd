// The host face's post stage (see lib.js): runs on every outcome of the job.
"use strict";
require("./lib.js").entry(require("./lib.js").post);
