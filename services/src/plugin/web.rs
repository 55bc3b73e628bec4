//! The `web` plugin (Twisted's `twistd web`): serves a folder, and mounts proxies, redirects
//! and health checks beside it, on any stream endpoint.
//!
//! ```text
//! rtwistd web --path /srv/www --port tcp:8080 --proxy /api=tcp:127.0.0.1:8000
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{PluginError, ServiceMaker};
use crate::net::StreamServer;
use crate::strports::{ClientEndpoint, ServerEndpoint};
use crate::web::{AccessLog, Resource, Site, default_index};
use rtwisted_core::Child;

/// The web plugin's default endpoint, Twisted's.
pub const DEFAULT_PORT: &str = "tcp:8080";

fn options() -> Command {
    Command::new("web")
        .arg(
            Arg::new("port")
                .long("port")
                .short('p')
                .visible_alias("listen")
                .value_name("STRPORT")
                .default_value(DEFAULT_PORT)
                .value_parser(ServerEndpoint::parse)
                .help("Where to listen (tcp:8080, ssl:8443:privateKey=key.pem:certKey=cert.pem, unix:/run/web.sock); over TLS, HTTP/2 is offered by ALPN"),
        )
        .arg(
            Arg::new("path")
                .long("path")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .help("The folder (or file) to serve at /"),
        )
        .arg(
            Arg::new("no-listing")
                .long("no-listing")
                .action(ArgAction::SetTrue)
                .help("Answer 403 for a folder without an index file instead of listing it"),
        )
        .arg(
            Arg::new("follow-symlinks")
                .long("follow-symlinks")
                .action(ArgAction::SetTrue)
                .help("Serve symbolic links that point outside the folder (refused by default)"),
        )
        .arg(
            Arg::new("index")
                .long("index")
                .short('i')
                .value_name("NAME")
                .action(ArgAction::Append)
                .help("A file name tried for a folder's index, in order (default: index, index.html, index.htm)"),
        )
        .arg(
            Arg::new("proxy")
                .long("proxy")
                .value_name("MOUNT=CLIENT_STRPORT")
                .action(ArgAction::Append)
                .help("Proxy requests under MOUNT to an HTTP server: --proxy /api=tcp:127.0.0.1:8000 (MOUNT is stripped)"),
        )
        .arg(
            Arg::new("redirect")
                .long("redirect")
                .value_name("MOUNT=URL")
                .action(ArgAction::Append)
                .help("Answer requests under MOUNT with 302 Found to URL"),
        )
        .arg(
            Arg::new("health")
                .long("health")
                .value_name("MOUNT")
                .action(ArgAction::Append)
                .help("Answer 200 ok at MOUNT (for load balancers), e.g. --health /healthz"),
        )
        .arg(
            Arg::new("access-log")
                .long("access-log")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .conflicts_with("no-access-log")
                .help("Write the access log (combined log format) to FILE instead of the daemon's log"),
        )
        .arg(
            Arg::new("no-access-log")
                .long("no-access-log")
                .action(ArgAction::SetTrue)
                .help("Keep no access log"),
        )
        .arg(
            Arg::new("header-timeout")
                .long("header-timeout")
                .value_name("SECONDS")
                .value_parser(clap::value_parser!(f64))
                .help("Seconds a client has to send its request head; also how long an idle keep-alive connection stays (default 10)"),
        )
        .arg(
            Arg::new("max-header-bytes")
                .long("max-header-bytes")
                .value_name("BYTES")
                .value_parser(clap::value_parser!(usize))
                .help("The largest request head, at least 8192 (default 32768); larger gets 431"),
        )
        .arg(
            Arg::new("max-headers")
                .long("max-headers")
                .value_name("N")
                .value_parser(clap::value_parser!(usize))
                .help("The most header fields in a request (default 100); more gets 431"),
        )
        .arg(
            Arg::new("max-request-line")
                .long("max-request-line")
                .value_name("BYTES")
                .value_parser(clap::value_parser!(usize))
                .help("The longest request target (default 8192); longer gets 414"),
        )
}

fn option_error(option: &'static str, message: impl Into<String>) -> PluginError {
    PluginError::Option {
        option,
        message: message.into(),
    }
}

/// Splits `MOUNT=VALUE`.
fn mount_and<'a>(option: &'static str, text: &'a str) -> Result<(&'a str, &'a str), PluginError> {
    text.split_once('=')
        .filter(|(mount, value)| !mount.is_empty() && !value.is_empty())
        .ok_or_else(|| {
            option_error(
                option,
                format!("'{text}' is not MOUNT=VALUE, like /api=tcp:127.0.0.1:8000"),
            )
        })
}

fn make_service(options: &ArgMatches) -> Result<Child, PluginError> {
    let endpoint = super::classic::port(options)?;
    if !endpoint.is_stream() {
        return Err(option_error(
            "port",
            format!("HTTP needs a stream endpoint; {endpoint} is a datagram endpoint"),
        ));
    }
    let mut site = Site::new();
    let mount = |site: &mut Site, option: &'static str, path: &str, resource: Resource| {
        if site.resources.get(path).is_some() {
            return Err(option_error(option, format!("{path} is mounted twice")));
        }
        site.mount(path, resource)
            .map_err(|message| option_error(option, message))
    };
    if let Some(path) = options.get_one::<PathBuf>("path") {
        let path = std::path::absolute(path)
            .map_err(|error| option_error("path", format!("'{}': {error}", path.display())))?;
        let index = match options.get_many::<String>("index") {
            Some(names) => names.cloned().collect(),
            None => default_index(),
        };
        mount(
            &mut site,
            "path",
            "/",
            Resource::Static {
                path,
                listing: !options.get_flag("no-listing"),
                follow_symlinks: options.get_flag("follow-symlinks"),
                index,
            },
        )?;
    } else if options.get_flag("no-listing")
        || options.get_flag("follow-symlinks")
        || options.contains_id("index")
    {
        return Err(option_error(
            "path",
            "--no-listing, --follow-symlinks and --index apply to --path DIR; give it",
        ));
    }
    for text in options.get_many::<String>("proxy").into_iter().flatten() {
        let (path, dest) = mount_and("proxy", text)?;
        let dest = ClientEndpoint::parse(dest)
            .map_err(|error| option_error("proxy", error.to_string()))?;
        mount(&mut site, "proxy", path, Resource::proxy(dest))?;
    }
    for text in options.get_many::<String>("redirect").into_iter().flatten() {
        let (path, to) = mount_and("redirect", text)?;
        mount(
            &mut site,
            "redirect",
            path,
            Resource::Redirect {
                to: to.to_owned(),
                code: 302,
            },
        )?;
    }
    for path in options.get_many::<String>("health").into_iter().flatten() {
        mount(&mut site, "health", path, Resource::Health {})?;
    }
    if site.resources.is_empty() {
        return Err(option_error(
            "path",
            "nothing to serve: give --path DIR, or --proxy, --redirect or --health",
        ));
    }
    if let Some(file) = options.get_one::<PathBuf>("access-log") {
        let file = std::path::absolute(file).map_err(|error| {
            option_error("access-log", format!("'{}': {error}", file.display()))
        })?;
        site.access_log = AccessLog::File(file);
    } else if options.get_flag("no-access-log") {
        site.access_log = AccessLog::Off;
    }
    if let Some(seconds) = options.get_one::<f64>("header-timeout") {
        site.http.header_timeout_secs = *seconds;
    }
    if let Some(bytes) = options.get_one::<usize>("max-header-bytes") {
        site.http.max_header_bytes = *bytes;
    }
    if let Some(count) = options.get_one::<usize>("max-headers") {
        site.http.max_headers = *count;
    }
    if let Some(bytes) = options.get_one::<usize>("max-request-line") {
        site.http.max_request_line = *bytes;
    }
    site.http
        .validate()
        .map_err(|message| option_error("max-header-bytes", message))?;
    Ok(Child::named(
        "web",
        Box::new(StreamServer::new(endpoint, Arc::new(site))),
    )?)
}

inventory::submit! {
    ServiceMaker {
        name: "web",
        description: "An HTTP server (twistd web): a folder, reverse proxies, redirects; its resource tree lives in the snapshot",
        options,
        make_service,
    }
}

#[cfg(test)]
mod tests {
    fn build(args: &[&str]) -> Result<serde_json::Value, String> {
        let child = crate::plugin::build("web", args)?;
        Ok(serde_json::to_value(&child).unwrap())
    }

    #[test]
    fn a_folder_and_a_proxy_make_a_site_on_port_8080() {
        let web = build(&["--path", "/srv/www", "--proxy", "/api=tcp:127.0.0.1:8000"]).unwrap();
        assert_eq!(web["name"], "web");
        assert_eq!(web["endpoint"], "tcp:8080");
        let resources = &web["factory"]["resources"];
        assert_eq!(web["factory"]["type"], "rtwisted.Site");
        assert_eq!(resources["/"]["kind"], "static");
        assert_eq!(resources["/"]["path"], "/srv/www");
        assert_eq!(resources["/"]["listing"], true);
        assert_eq!(resources["/api"]["kind"], "proxy");
        assert_eq!(resources["/api"]["dest"], "tcp:host=127.0.0.1:port=8000");
    }

    #[test]
    fn options_reach_the_site() {
        let web = build(&[
            "--path",
            "rel",
            "--no-listing",
            "--follow-symlinks",
            "--index",
            "home.html",
            "--health",
            "/healthz",
            "--redirect",
            "/old=https://example.org/",
            "--no-access-log",
            "--header-timeout",
            "2.5",
            "--max-headers",
            "20",
        ])
        .unwrap();
        let site = &web["factory"];
        let root = &site["resources"]["/"];
        assert!(root["path"].as_str().unwrap().starts_with('/'), "{root}");
        assert_eq!(root["listing"], false);
        assert_eq!(root["follow_symlinks"], true);
        assert_eq!(root["index"], serde_json::json!(["home.html"]));
        assert_eq!(site["resources"]["/healthz"]["kind"], "health");
        assert_eq!(site["resources"]["/old"]["code"], 302);
        assert_eq!(site["access_log"], "off");
        assert_eq!(site["http"]["header_timeout_secs"], 2.5);
        assert_eq!(site["http"]["max_headers"], 20);
    }

    #[test]
    fn bad_options_are_refused_naming_the_option() {
        for (args, needle) in [
            (&[][..], "nothing to serve"),
            (&["--proxy", "api=tcp:127.0.0.1:1"], "invalid mount path"),
            (&["--proxy", "/api"], "not MOUNT=VALUE"),
            (&["--proxy", "/api=tcp:nohost"], "--proxy"),
            (
                &["--path", "/x", "--proxy", "/=tcp:127.0.0.1:1"],
                "mounted twice",
            ),
            (&["--path", "/x", "--port", "udp:80"], "datagram"),
            (
                &["--path", "/x", "--max-header-bytes", "100"],
                "at least 8192",
            ),
            (
                &["--path", "/x", "--header-timeout", "0"],
                "header_timeout_secs",
            ),
            (&["--no-listing"], "apply to --path"),
        ] {
            let error = build(args).unwrap_err();
            assert!(error.contains(needle), "{args:?}: {error}");
        }
    }
}
