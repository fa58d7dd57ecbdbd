//! Checks of values that name things on GitHub: secret names, logins, repositories, the API
//! URL. The `seed` subcommand applies the same rules to its flags.

use super::ConfigError;

/// GitHub's rules for secret names: letters, digits and `_`, not starting with a digit or
/// `GITHUB_`. <https://docs.github.com/en/actions/how-tos/write-workflows/choose-what-workflows-do/use-secrets#naming-your-secrets>
pub(crate) fn validate_secret_name(name: &str) -> Result<(), ConfigError> {
    let invalid = |problem: &str| ConfigError::Invalid {
        input: "secret-name",
        title: "Secret name not allowed",
        problem: format!("\"{name}\" {problem}"),
    };
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid("may only contain letters, digits and `_`"));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid("must not start with a digit"));
    }
    if name.to_ascii_uppercase().starts_with("GITHUB_") {
        return Err(invalid("must not start with GITHUB_ (reserved by GitHub)"));
    }
    Ok(())
}

/// A GitHub login (user or organization).
pub(crate) fn validate_slug(input: &'static str, value: &str) -> Result<(), ConfigError> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            input,
            title: "Organization name not valid",
            problem: format!("\"{value}\" is not a GitHub login (letters, digits, `-`, `_`, `.`)"),
        })
    }
}

/// `owner/name`.
pub(crate) fn validate_repository(value: &str) -> Result<(), ConfigError> {
    let valid = value.split_once('/').is_some_and(|(owner, name)| {
        let part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        };
        part(owner) && part(name)
    });
    if valid {
        Ok(())
    } else {
        Err(ConfigError::Runner {
            variable: "GITHUB_REPOSITORY",
            title: "Repository not owner/name",
            problem: format!("\"{value}\" is not of the form owner/name"),
        })
    }
}

/// `https://…`, or `http://` to a loopback address (tests, local proxies).
pub(crate) fn validate_api_url(value: &str) -> Result<String, ConfigError> {
    let invalid = |problem: &str| ConfigError::Runner {
        variable: "GITHUB_API_URL",
        title: "GITHUB_API_URL not usable",
        problem: format!("\"{value}\" {problem}"),
    };
    let uri: http::Uri = value
        .parse()
        .map_err(|_| invalid("is not a URL; expected e.g. https://HOST/api/v3"))?;
    let host = uri.host().ok_or_else(|| invalid("has no host"))?;
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if loopback => {}
        Some("http") => return Err(invalid("must use https (plain http is only for loopback)")),
        _ => return Err(invalid("must start with https://")),
    }
    if uri.query().is_some() {
        return Err(invalid("must not have a query"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// YAML 1.2 core-schema booleans, as `@actions/core` `getBooleanInput` accepts them.
pub(crate) fn parse_bool(input: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        _ => Err(ConfigError::Invalid {
            input,
            title: "Flag not true or false",
            problem: format!("is \"{value}\"; expected true or false"),
        }),
    }
}
