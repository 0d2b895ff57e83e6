//! Kafka's regular expressions, as requests carry them (a consumer group
//! member's `SubscribedTopicRegex`, ListTransactions v2's
//! `TransactionalIdPattern`): matched against whole names, as Java's
//! `Matcher::matches` and RE2/J match, and compiled within a size bound (a
//! pattern is a client's bytes: an enormous one is refused, not built).
//! Uses the `regex` crate.

/// The most a pattern may compile to.
const SIZE_LIMIT: usize = 1 << 20;

/// `pattern` compiled to match whole names; the error says why not,
/// naming the field `what` the pattern came in.
///
/// ```
/// use gyre_broker::protocol::pattern::whole_names;
///
/// let re = whole_names("orders-.*", "SubscribedTopicRegex")?;
/// assert!(re.is_match("orders-eu"));
/// assert!(!re.is_match("old-orders-eu"), "the whole name must match");
/// assert!(whole_names("(", "SubscribedTopicRegex").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn whole_names(pattern: &str, what: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| format!("{what} `{pattern}` is not a valid regular expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enormous_pattern_is_refused_not_built() {
        let huge = "(a|b|c|d){1000}".repeat(20);
        assert!(whole_names(&huge, "p").unwrap_err().contains("p `"));
        assert!(whole_names("a|b", "p").unwrap().is_match("b"));
        assert!(!whole_names("a|b", "p").unwrap().is_match("ab"));
    }
}
