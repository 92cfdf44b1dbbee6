//! Checks of a realm's live-data sections: `[[realms.history]]` and `[[realms.models]]`.

use std::collections::HashMap;

use super::Problem;
use crate::error::KeyPath;
use crate::{uri, HistoryConfig, MatchPolicy, ModelViewConfig, RealmConfig};

/// The first problem of `realm`'s history and model-view entries, if any.
pub(super) fn check(realm: &RealmConfig, path: &KeyPath) -> Option<Problem> {
    for (index, history) in realm.history.iter().enumerate() {
        if let Some(problem) = check_history(history, &path.key("history").index(index)) {
            return Some(problem);
        }
    }
    let mut first_index_of_model: HashMap<&str, usize> = HashMap::new();
    for (index, model) in realm.models.iter().enumerate() {
        let model_path = path.key("models").index(index);
        if let Some(problem) = check_model(model, &model_path) {
            return Some(problem);
        }
        if let Some(first) = first_index_of_model.insert(&model.name, index) {
            return Some(Problem::new(
                model_path.key("name"),
                format!(
                    "model `{}` has two views in realm `{}` (first as models[{first}])",
                    model.name, realm.name
                ),
            ));
        }
    }
    None
}

fn check_history(history: &HistoryConfig, path: &KeyPath) -> Option<Problem> {
    if let Err(reason) = uri::validate(&history.uri, history.match_policy) {
        return Some(Problem::new(
            path.key("uri"),
            format!(
                "bad {} topic pattern: {reason}",
                history.match_policy.as_str()
            ),
        ));
    }
    if history.limit == 0 || history.limit > HistoryConfig::MAX_LIMIT {
        return Some(Problem::new(
            path.key("limit"),
            format!(
                "must be between 1 and {}, got {}",
                HistoryConfig::MAX_LIMIT,
                history.limit
            ),
        ));
    }
    if history.ttl_s == 0 {
        return Some(Problem::new(
            path.key("ttl_s"),
            "must be at least 1 (an event kept for no time is not kept)",
        ));
    }
    None
}

fn check_model(model: &ModelViewConfig, path: &KeyPath) -> Option<Problem> {
    if let Err(reason) = uri::validate(&model.name, MatchPolicy::Exact) {
        return Some(Problem::new(
            path.key("name"),
            format!("bad model name (`app.model`): {reason}"),
        ));
    }
    if model.max_rows == 0 || model.max_rows > ModelViewConfig::MAX_ROWS {
        return Some(Problem::new(
            path.key("max_rows"),
            format!(
                "must be between 1 and {}, got {}",
                ModelViewConfig::MAX_ROWS,
                model.max_rows
            ),
        ));
    }
    if model.max_bytes < ModelViewConfig::MIN_BYTES {
        return Some(Problem::new(
            path.key("max_bytes"),
            format!(
                "must be at least {}, got {}",
                ModelViewConfig::MIN_BYTES,
                model.max_bytes
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn error_of(realm_extra: &str) -> String {
        let text = format!("[[realms]]\nname = \"realm1\"\n{realm_extra}");
        Config::from_toml_str(&text, "switchboard.toml")
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn history_entries_are_checked() {
        let message = error_of("[[realms.history]]\nuri = \"app..x\"\n");
        assert!(message.contains("realms[0].history[0].uri"), "{message}");
        let message =
            error_of("[[realms.history]]\nuri = \"app.\"\nmatch = \"prefix\"\nlimit = 0\n");
        assert!(
            message.contains("realms[0].history[0].limit: must be between 1"),
            "{message}"
        );
        let message = error_of("[[realms.history]]\nuri = \"app\"\nttl_s = 0\n");
        assert!(message.contains("history[0].ttl_s"), "{message}");
    }

    #[test]
    fn model_views_are_checked() {
        let message = error_of("[[realms.models]]\nname = \"shop order\"\n");
        assert!(message.contains("realms[0].models[0].name"), "{message}");
        let twice =
            "[[realms.models]]\nname = \"shop.order\"\n[[realms.models]]\nname = \"shop.order\"\n";
        let message = error_of(twice);
        assert!(
            message.contains("models[1].name: model `shop.order` has two views"),
            "{message}"
        );
        let message = error_of("[[realms.models]]\nname = \"shop.order\"\nmax_rows = 0\n");
        assert!(message.contains("models[0].max_rows"), "{message}");
    }

    #[test]
    fn defaults_apply() {
        let text = "[[realms]]\nname = \"realm1\"\n[[realms.history]]\nuri = \"models.\"\nmatch = \"prefix\"\n\
                    [[realms.models]]\nname = \"shop.order\"\n";
        let config = Config::from_toml_str(text, "switchboard.toml").expect("valid");
        let realm = &config.realms[0];
        assert_eq!(realm.history[0].limit, crate::HistoryConfig::DEFAULT_LIMIT);
        assert_eq!(realm.history[0].ttl_s, crate::HistoryConfig::DEFAULT_TTL_S);
        assert_eq!(
            realm.models[0].max_rows,
            crate::ModelViewConfig::DEFAULT_MAX_ROWS
        );
    }
}
