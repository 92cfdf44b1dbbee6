//! The checks serde cannot express: cross-references (roles named by `anonymous_role` and users), uniqueness,
//! URI syntax and sane limits. They run on every load so a bad config fails at start, not at the first HELLO.

use std::collections::HashMap;

mod live;

use crate::error::{ConfigError, KeyPath};
use crate::{uri, Config, IngestConfig, MatchPolicy, RealmConfig};

/// Smallest accepted `gateway.max_message_bytes`: below this even a HELLO with its details may not fit.
pub const MIN_MESSAGE_BYTES: usize = 1024;

/// Smallest accepted `gateway.header_timeout_ms`: below this, ordinary clients on a slow network could not
/// send a request header in time.
pub const MIN_HEADER_TIMEOUT_MS: u64 = 100;

/// Smallest accepted `gateway.longpoll_request_timeout_ms`: a shorter hold turns long-polling into busy
/// polling.
pub const MIN_LONGPOLL_REQUEST_TIMEOUT_MS: u64 = 100;

/// Smallest accepted `max_body_bytes` of an ingestion transport: below this not even one small event
/// with its envelope fits.
pub const MIN_BODY_BYTES: usize = 1024;

/// Largest accepted `max_body_bytes` (4 GiB - 1, what the HTTP server can count).
pub const MAX_BODY_BYTES: usize = u32::MAX as usize;

/// Shortest accepted `cluster.max_age_s`: below a minute a restarting node could not rebuild anything.
pub(crate) const MIN_STREAM_AGE_S: u64 = 60;

/// Longest accepted `cluster.max_age_s` (ten years): past that the value is a typo.
pub(crate) const MAX_STREAM_AGE_S: u64 = 10 * 365 * 86_400;

/// Smallest accepted `cluster.max_bytes` (1 MiB).
pub(crate) const MIN_STREAM_BYTES: u64 = 1 << 20;

/// Largest accepted `cluster.max_bytes` (1 TiB).
pub(crate) const MAX_STREAM_BYTES: u64 = 1 << 40;

/// Longest accepted `cluster.node`: with the stream name it makes the node's queue name, which AMQP
/// bounds to 255 bytes.
pub(crate) const MAX_NODE_NAME: usize = 64;

/// Longest accepted `cluster.stream` (255 bytes for an AMQP queue name, less `.node.<node>`).
pub(crate) const MAX_STREAM_NAME: usize = 180;

/// One failed check: the key at fault and why. The loader turns it into a [`ConfigError`] that names the
/// file line or the environment variable responsible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) path: KeyPath,
    pub(crate) reason: String,
}

impl Problem {
    fn new(path: KeyPath, reason: impl Into<String>) -> Self {
        Self {
            path,
            reason: reason.into(),
        }
    }
}

impl Config {
    /// Checks what serde cannot: cross-references, uniqueness, URI syntax and limits. Called by every
    /// loader; call it yourself after building or changing a `Config` in code.
    ///
    /// The error names the key path (e.g. `realms[0].roles[1].permissions[0].uri`); the loaders replace it
    /// with the file line or the environment variable when they know it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.first_problem() {
            None => Ok(()),
            Some(problem) => Err(ConfigError::Invalid {
                origin: None,
                key: problem.path.to_string(),
                reason: problem.reason,
            }),
        }
    }

    /// The first failed check, in file order as far as the sections go.
    pub(crate) fn first_problem(&self) -> Option<Problem> {
        self.check_gateway()
            .or_else(|| self.check_security())
            .or_else(|| check_ingest(&self.ingest))
            .or_else(|| self.check_cluster())
            .or_else(|| self.check_realms())
    }

    fn check_gateway(&self) -> Option<Problem> {
        let gateway = KeyPath::root("gateway");
        if self.gateway.max_message_bytes < MIN_MESSAGE_BYTES {
            return Some(Problem::new(
                gateway.key("max_message_bytes"),
                format!(
                    "must be at least {MIN_MESSAGE_BYTES}, got {}",
                    self.gateway.max_message_bytes
                ),
            ));
        }
        let g = &self.gateway;
        let at_least: [(&str, usize, usize); 8] = [
            ("outbound_queue", g.outbound_queue, 1),
            (
                "outbound_queue_bytes",
                g.outbound_queue_bytes,
                g.max_message_bytes,
            ),
            ("max_subscriptions", g.max_subscriptions, 1),
            ("max_pattern_subscriptions", g.max_pattern_subscriptions, 0),
            ("max_pending_requests", g.max_pending_requests, 1),
            ("max_sessions_per_authid", g.max_sessions_per_authid, 1),
            ("max_uri_bytes", g.max_uri_bytes, 16),
            ("history_max_bytes", g.history_max_bytes, 64 * 1024),
        ];
        for (key, value, minimum) in at_least {
            if value < minimum {
                let reason = match key {
                    "outbound_queue_bytes" => format!(
                        "must be at least max_message_bytes ({minimum}), so that any message fits, got {value}"
                    ),
                    _ => format!("must be at least {minimum}"),
                };
                return Some(Problem::new(gateway.key(key), reason));
            }
        }
        if self.gateway.header_timeout_ms < MIN_HEADER_TIMEOUT_MS {
            return Some(Problem::new(
                gateway.key("header_timeout_ms"),
                format!(
                    "must be at least {MIN_HEADER_TIMEOUT_MS}, got {}",
                    self.gateway.header_timeout_ms
                ),
            ));
        }
        let (request, session) = (
            self.gateway.longpoll_request_timeout_ms,
            self.gateway.longpoll_session_timeout_ms,
        );
        if request < MIN_LONGPOLL_REQUEST_TIMEOUT_MS {
            return Some(Problem::new(
                gateway.key("longpoll_request_timeout_ms"),
                format!("must be at least {MIN_LONGPOLL_REQUEST_TIMEOUT_MS}, got {request}"),
            ));
        }
        if session <= request {
            return Some(Problem::new(
                gateway.key("longpoll_session_timeout_ms"),
                format!(
                    "must be longer than longpoll_request_timeout_ms ({request}), or a client waiting \
                     on a held receive would be closed; got {session}"
                ),
            ));
        }
        if self.gateway.max_connections < 1 {
            return Some(Problem::new(
                gateway.key("max_connections"),
                "must be at least 1 (0 would refuse every client)",
            ));
        }
        None
    }

    fn check_security(&self) -> Option<Problem> {
        let security = KeyPath::root("security");
        match (&self.security.secret, &self.security.secret_file) {
            (Some(_), Some(_)) => Some(Problem::new(
                security.key("secret_file"),
                "set either `secret` or `secret_file`, not both",
            )),
            (Some(secret), None) if secret.is_empty() => Some(Problem::new(
                security.key("secret"),
                "the secret is empty; remove the key to get a random one",
            )),
            _ => None,
        }
    }

    /// `[cluster]`: the broker URL, names RabbitMQ will accept (the node name is also part of a queue
    /// name) and a retention that neither forgets at once nor fills a disk forever.
    fn check_cluster(&self) -> Option<Problem> {
        let cluster = self.cluster.as_ref()?;
        let path = KeyPath::root("cluster");
        if let Some(problem) = check_amqp_url(&cluster.amqp_url, path.key("amqp_url")) {
            return Some(problem);
        }
        if let Err(reason) = check_stream_name(&cluster.stream) {
            return Some(Problem::new(path.key("stream"), reason));
        }
        if let Err(reason) = check_node_name(&cluster.node) {
            return Some(Problem::new(path.key("node"), reason));
        }
        if !(MIN_STREAM_AGE_S..=MAX_STREAM_AGE_S).contains(&cluster.max_age_s) {
            return Some(Problem::new(
                path.key("max_age_s"),
                format!(
                    "must be between {MIN_STREAM_AGE_S} (a minute) and {MAX_STREAM_AGE_S} (ten years), got {}",
                    cluster.max_age_s
                ),
            ));
        }
        if !(MIN_STREAM_BYTES..=MAX_STREAM_BYTES).contains(&cluster.max_bytes) {
            return Some(Problem::new(
                path.key("max_bytes"),
                format!(
                    "must be between {MIN_STREAM_BYTES} (1 MiB) and {MAX_STREAM_BYTES} (1 TiB), got {}",
                    cluster.max_bytes
                ),
            ));
        }
        None
    }

    fn check_realms(&self) -> Option<Problem> {
        let mut first_index_of_name: HashMap<&str, usize> = HashMap::new();
        for (index, realm) in self.realms.iter().enumerate() {
            let path = KeyPath::root("realms").index(index);
            if let Err(reason) = uri::validate(&realm.name, MatchPolicy::Exact) {
                return Some(Problem::new(
                    path.key("name"),
                    format!("bad realm name: {reason}"),
                ));
            }
            if let Some(first) = first_index_of_name.insert(&realm.name, index) {
                return Some(Problem::new(
                    path.key("name"),
                    format!(
                        "realm `{}` is defined twice (first as realms[{first}])",
                        realm.name
                    ),
                ));
            }
            if let Some(problem) = check_realm(realm, &path) {
                return Some(problem);
            }
        }
        None
    }
}

fn check_ingest(ingest: &IngestConfig) -> Option<Problem> {
    let path = KeyPath::root("ingest");
    if let Some(jsonrpc) = &ingest.jsonrpc {
        let max = jsonrpc.max_body_bytes;
        if !(MIN_BODY_BYTES..=MAX_BODY_BYTES).contains(&max) {
            return Some(Problem::new(
                path.key("jsonrpc").key("max_body_bytes"),
                format!("must be between {MIN_BODY_BYTES} and {MAX_BODY_BYTES}, got {max}"),
            ));
        }
        if jsonrpc.body_timeout_ms < 100 {
            return Some(Problem::new(
                path.key("jsonrpc").key("body_timeout_ms"),
                format!("must be at least 100, got {}", jsonrpc.body_timeout_ms),
            ));
        }
    }
    if let Some(zmq) = &ingest.zmq {
        if let Err(reason) = check_zmq_endpoint(&zmq.endpoint) {
            return Some(Problem::new(path.key("zmq").key("endpoint"), reason));
        }
    }
    let amqp = ingest.amqp.as_ref()?;
    check_amqp_url(&amqp.url, path.key("amqp").key("url"))
}

/// `tcp://HOST:PORT` is what the gateway's ZeroMQ receiver binds and the emitter connects to; other
/// ZeroMQ transports (ipc://, inproc://, pgm://) are not built in.
fn check_zmq_endpoint(endpoint: &str) -> Result<(), String> {
    let Some(address) = endpoint.strip_prefix("tcp://") else {
        let scheme = endpoint
            .split_once("://")
            .map_or("(none)", |(scheme, _)| scheme);
        return Err(match scheme {
            "ipc" => format!("endpoint {endpoint:?}: ipc:// is not supported, use tcp://HOST:PORT"),
            _ => format!("endpoint {endpoint:?} must be tcp://HOST:PORT, its scheme is {scheme:?}"),
        });
    };
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(format!("endpoint {endpoint:?} must be tcp://HOST:PORT")),
    }
}

/// A node name: letters, digits, `-` and `_`, so that it reads the same in logs, metrics and the node's
/// queue name `<stream>.node.<node>`. Public: a node checks the names other nodes' messages carry the
/// same way before it builds a queue name from one.
pub fn check_node_name(node: &str) -> Result<(), String> {
    if node.is_empty() {
        return Err("the node name is empty; give every node of the cluster its own name".into());
    }
    if node.len() > MAX_NODE_NAME {
        return Err(format!(
            "the node name is {} bytes long, at most {MAX_NODE_NAME} are accepted",
            node.len()
        ));
    }
    if let Some(bad) = node
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "node name {node:?} holds {bad:?}: only letters, digits, '-' and '_' are accepted"
        ));
    }
    Ok(())
}

/// A stream (queue) name RabbitMQ accepts and that is not one of its reserved `amq.` names.
fn check_stream_name(stream: &str) -> Result<(), String> {
    if stream.is_empty() || stream.len() > MAX_STREAM_NAME {
        return Err(format!(
            "the stream name must be 1 to {MAX_STREAM_NAME} bytes long, got {}",
            stream.len()
        ));
    }
    if stream.starts_with("amq.") {
        return Err(format!(
            "stream name {stream:?}: names starting with amq. are reserved by RabbitMQ"
        ));
    }
    if let Some(bad) = stream
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(format!(
            "stream name {stream:?} holds {bad:?}: only letters, digits, '.', ':', '-' and '_' are accepted"
        ));
    }
    Ok(())
}

fn check_amqp_url(url: &str, path: KeyPath) -> Option<Problem> {
    // The URL may hold a password, so only its scheme is quoted.
    let scheme = url.split_once("://").map_or("(none)", |(scheme, _)| scheme);
    match scheme {
        "amqp" => None,
        "amqps" => Some(Problem::new(
            path,
            "amqps:// (AMQP over TLS) is not supported: this build has no TLS for AMQP; use amqp://",
        )),
        _ => Some(Problem::new(
            path,
            format!("the URL must start with amqp://, its scheme is {scheme:?}"),
        )),
    }
}

fn check_realm(realm: &RealmConfig, path: &KeyPath) -> Option<Problem> {
    let mut first_index_of_role: HashMap<&str, usize> = HashMap::new();
    for (index, role) in realm.roles.iter().enumerate() {
        let role_path = path.key("roles").index(index);
        if role.name.is_empty() {
            return Some(Problem::new(
                role_path.key("name"),
                "the role name is empty",
            ));
        }
        if let Some(first) = first_index_of_role.insert(&role.name, index) {
            return Some(Problem::new(
                role_path.key("name"),
                format!(
                    "role `{}` is defined twice in realm `{}` (first as roles[{first}])",
                    role.name, realm.name
                ),
            ));
        }
        for (permission_index, permission) in role.permissions.iter().enumerate() {
            if let Err(reason) = uri::validate(&permission.uri, permission.match_policy) {
                return Some(Problem::new(
                    role_path
                        .key("permissions")
                        .index(permission_index)
                        .key("uri"),
                    format!(
                        "bad {} URI pattern: {reason}",
                        permission.match_policy.as_str()
                    ),
                ));
            }
        }
    }
    let known_roles = || {
        let names: Vec<String> = realm
            .roles
            .iter()
            .map(|role| format!("`{}`", role.name))
            .collect();
        if names.is_empty() {
            "the realm defines no roles".to_string()
        } else {
            format!("defined roles: {}", names.join(", "))
        }
    };
    if let Some(anonymous_role) = &realm.anonymous_role {
        if !first_index_of_role.contains_key(anonymous_role.as_str()) {
            return Some(Problem::new(
                path.key("anonymous_role"),
                format!(
                    "role `{anonymous_role}` is not defined in realm `{}`; {}",
                    realm.name,
                    known_roles()
                ),
            ));
        }
    }
    let mut first_index_of_authid: HashMap<&str, usize> = HashMap::new();
    for (index, user) in realm.users.iter().enumerate() {
        let user_path = path.key("users").index(index);
        if let Some(first) = first_index_of_authid.insert(&user.authid, index) {
            return Some(Problem::new(
                user_path.key("authid"),
                format!(
                    "user `{}` is defined twice in realm `{}` (first as users[{first}])",
                    user.authid, realm.name
                ),
            ));
        }
        if !first_index_of_role.contains_key(user.role.as_str()) {
            return Some(Problem::new(
                user_path.key("role"),
                format!(
                    "role `{}` is not defined in realm `{}`; {}",
                    user.role,
                    realm.name,
                    known_roles()
                ),
            ));
        }
    }
    live::check(realm, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALM_HEADER: &str = "[[realms]]\nname = \"realm1\"\n";

    fn error_of(text: &str) -> String {
        match Config::from_toml_str(text, "switchboard.toml") {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn role_with_permission(uri: &str, match_policy: &str) -> String {
        format!(
            "{REALM_HEADER}[[realms.roles]]\nname = \"r\"\npermissions = [\n  {{ uri = \"com.ok\" }},\n  \
             {{ uri = \"{uri}\", match = \"{match_policy}\", allow = {{ call = true }} }},\n]\n"
        )
    }

    #[test]
    fn bad_exact_permission_uri_names_its_line_and_key() {
        let message = error_of(&role_with_permission("com.my app", "exact"));
        assert!(
            message.starts_with("switchboard.toml:7: realms[0].roles[0].permissions[1].uri: "),
            "{message}"
        );
        assert!(message.contains("com.my app"), "{message}");
    }

    #[test]
    fn wildcard_and_prefix_patterns_are_accepted() {
        for (uri, policy) in [
            ("com..update", "wildcard"),
            ("com.myapp.", "prefix"),
            ("", "prefix"),
        ] {
            let config =
                Config::from_toml_str(&role_with_permission(uri, policy), "switchboard.toml");
            assert!(config.is_ok(), "{uri:?} {policy}: {config:?}");
        }
    }

    #[test]
    fn anonymous_role_must_name_a_role_of_the_realm() {
        let text = format!(
            "{REALM_HEADER}anonymous_role = \"guest\"\n[[realms.roles]]\nname = \"admin\"\n"
        );
        let message = error_of(&text);
        assert!(
            message.starts_with("switchboard.toml:3: realms[0].anonymous_role: role `guest`"),
            "{message}"
        );
        assert!(message.contains("defined roles: `admin`"), "{message}");
    }

    #[test]
    fn duplicate_realm_names_the_second_one() {
        let message = error_of(&format!("{REALM_HEADER}\n{REALM_HEADER}"));
        assert!(
            message
                .starts_with("switchboard.toml:5: realms[1].name: realm `realm1` is defined twice"),
            "{message}"
        );
    }

    #[test]
    fn realm_name_must_be_an_exact_uri() {
        let message = error_of("[[realms]]\nname = \"realm 1\"\n");
        assert!(
            message.starts_with("switchboard.toml:2: realms[0].name: bad realm name"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_role_is_refused() {
        let text = format!(
            "{REALM_HEADER}[[realms.roles]]\nname = \"a\"\n[[realms.roles]]\nname = \"a\"\n"
        );
        let message = error_of(&text);
        assert!(
            message.starts_with(
                "switchboard.toml:6: realms[0].roles[1].name: role `a` is defined twice"
            ),
            "{message}"
        );
    }

    #[test]
    fn user_role_must_exist() {
        let users = "[[realms.users]]\nauthid = \"backend\"\nsecret = \"x\"\nrole = \"backend\"\n";
        let text = format!("{REALM_HEADER}{users}");
        let message = error_of(&text);
        assert!(
            message.starts_with("switchboard.toml:6: realms[0].users[0].role: role `backend`"),
            "{message}"
        );
    }

    #[test]
    fn limits_are_enforced() {
        let message = error_of("[gateway]\nmax_message_bytes = 100\n");
        assert!(
            message.starts_with(
                "switchboard.toml:2: gateway.max_message_bytes: must be at least 1024"
            ),
            "{message}"
        );
        let message = error_of("[gateway]\noutbound_queue = 0\n");
        assert!(
            message.starts_with("switchboard.toml:2: gateway.outbound_queue: must be at least 1"),
            "{message}"
        );
    }

    #[test]
    fn connection_limits_are_enforced() {
        let message = error_of("[gateway]\nlisten = \"127.0.0.1:1\"\nheader_timeout_ms = 0\n");
        assert!(
            message.starts_with(
                "switchboard.toml:3: gateway.header_timeout_ms: must be at least 100, got 0"
            ),
            "{message}"
        );
        let message = error_of("[gateway]\nlongpoll_request_timeout_ms = 99\n");
        assert_eq!(
            message,
            "switchboard.toml:2: gateway.longpoll_request_timeout_ms: must be at least 100, got 99"
        );
        let message = error_of(
            "[gateway]\nlongpoll_request_timeout_ms = 5000\nlongpoll_session_timeout_ms = 5000\n",
        );
        assert!(
            message.starts_with(
                "switchboard.toml:3: gateway.longpoll_session_timeout_ms: must be longer than \
                 longpoll_request_timeout_ms (5000)"
            ),
            "{message}"
        );
        let message = error_of("[gateway]\nmax_connections = 0\n");
        assert!(
            message.starts_with("switchboard.toml:2: gateway.max_connections: must be at least 1"),
            "{message}"
        );
        let message = error_of("[gateway]\nmax_connections = -1\n");
        assert!(
            message.contains("max_connections"),
            "a negative count is refused: {message}"
        );
        let config = Config::from_toml_str(
            "[gateway]\nheader_timeout_ms = 100\nmax_connections = 1\nshutdown_grace_ms = 0\n",
            "switchboard.toml",
        )
        .expect("the smallest accepted values");
        assert_eq!(config.gateway.header_timeout_ms, 100);
        assert_eq!(config.gateway.max_connections, 1);
        assert_eq!(config.gateway.shutdown_grace_ms, 0);
    }

    #[test]
    fn body_limits_are_enforced() {
        let message = error_of("[ingest.jsonrpc]\nmax_body_bytes = 1000\n");
        assert!(
            message.starts_with(
                "switchboard.toml:2: ingest.jsonrpc.max_body_bytes: must be between 1024 and"
            ),
            "{message}"
        );
        let config = Config::from_toml_str("[ingest.jsonrpc]\nmax_body_bytes = 1024\n", "t");
        assert_eq!(config.unwrap().ingest.jsonrpc.unwrap().max_body_bytes, 1024);
    }

    #[test]
    fn secret_and_secret_file_are_exclusive() {
        let message = error_of("[security]\nsecret = \"a\"\nsecret_file = \"/run/secret\"\n");
        assert!(
            message.starts_with("switchboard.toml:3: security.secret_file: set either"),
            "{message}"
        );
    }

    #[test]
    fn transport_addresses_need_their_scheme() {
        let message = error_of("[ingest.zmq]\nendpoint = \"127.0.0.1:5560\"\n");
        assert!(
            message.starts_with("switchboard.toml:2: ingest.zmq.endpoint: "),
            "{message}"
        );
        let message = error_of("[ingest.amqp]\nurl = \"http://user:pw@host\"\n");
        assert!(
            message.starts_with("switchboard.toml:2: ingest.amqp.url: "),
            "{message}"
        );
        assert!(
            !message.contains("pw"),
            "the password must not be echoed: {message}"
        );
    }

    #[test]
    fn what_is_not_built_in_is_refused_by_name() {
        let message = error_of("[ingest.zmq]\nendpoint = \"ipc:///tmp/switchboard.sock\"\n");
        assert!(
            message.starts_with("switchboard.toml:2: ingest.zmq.endpoint: "),
            "{message}"
        );
        assert!(message.contains("ipc:// is not supported"), "{message}");
        let message = error_of("[ingest.zmq]\nendpoint = \"tcp://127.0.0.1\"\n");
        assert!(message.contains("must be tcp://HOST:PORT"), "{message}");
        let message = error_of("[ingest.amqp]\nurl = \"amqps://user:pw@host/%2f\"\n");
        assert!(
            message.starts_with(
                "switchboard.toml:2: ingest.amqp.url: amqps:// (AMQP over TLS) is not supported"
            ),
            "{message}"
        );
        assert!(!message.contains("pw"), "{message}");
    }

    const CLUSTER: &str =
        "[cluster]\namqp_url = \"amqp://guest:guest@127.0.0.1/%2f\"\nnode = \"n1\"\n";

    #[test]
    fn a_cluster_section_with_its_required_keys_gets_the_defaults() {
        let config = Config::from_toml_str(CLUSTER, "switchboard.toml").expect("valid");
        let cluster = config.cluster.expect("the section");
        assert_eq!(cluster.stream, "switchboard.events");
        assert_eq!(cluster.node, "n1");
        assert_eq!(cluster.max_age_s, 86_400);
        assert_eq!(cluster.max_bytes, 1 << 30);
    }

    #[test]
    fn cluster_keys_are_checked_by_name() {
        for (extra, line, key, words) in [
            ("stream = \"amq.events\"\n", 4, "stream", "reserved"),
            ("stream = \"\"\n", 4, "stream", "1 to 180 bytes"),
            ("stream = \"a b\"\n", 4, "stream", "holds ' '"),
            ("max_age_s = 0\n", 4, "max_age_s", "between 60"),
            ("max_age_s = 999999999999\n", 4, "max_age_s", "ten years"),
            ("max_bytes = 0\n", 4, "max_bytes", "between 1048576"),
            ("max_bytes = 1099511627777\n", 4, "max_bytes", "1 TiB"),
        ] {
            let message = error_of(&format!("{CLUSTER}{extra}"));
            assert!(
                message.starts_with(&format!("switchboard.toml:{line}: cluster.{key}: ")),
                "{message}"
            );
            assert!(message.contains(words), "{message}");
        }
        let message = error_of("[cluster]\namqp_url = \"amqp://h/%2f\"\nnode = \"\"\n");
        assert!(
            message.starts_with("switchboard.toml:3: cluster.node: the node name is empty"),
            "{message}"
        );
        let message = error_of("[cluster]\namqp_url = \"amqp://h/%2f\"\nnode = \"a.b\"\n");
        assert!(
            message.contains("cluster.node: node name \"a.b\" holds '.'"),
            "{message}"
        );
        let message = error_of(&format!(
            "[cluster]\namqp_url = \"amqp://h/%2f\"\nnode = \"{}\"\n",
            "n".repeat(65)
        ));
        assert!(message.contains("at most 64"), "{message}");
        let message = error_of("[cluster]\namqp_url = \"http://u:secret@h\"\nnode = \"n\"\n");
        assert!(
            message.starts_with(
                "switchboard.toml:2: cluster.amqp_url: the URL must start with amqp://"
            ),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
        let message = error_of("[cluster]\namqp_url = \"amqp://h/%2f\"\n");
        assert!(message.contains("node"), "the node is required: {message}");
    }

    #[test]
    fn validate_without_a_file_names_the_key_path() {
        let mut config = Config::embedded_default();
        config.gateway.outbound_queue = 0;
        let message = config.validate().unwrap_err().to_string();
        assert_eq!(message, "gateway.outbound_queue: must be at least 1");
    }
}
