//! A map keyed by a share group's member, (group id, member id), looked
//! up with borrowed ids: a share fetch, and each wake of a parked one,
//! finds its member and session without copying the two ids, as a map
//! keyed by the owned pair would have it do. Plain data; uses only the
//! standard library.

use std::collections::HashMap;

/// Values by group id, then member id.
///
/// ```
/// use gyre_broker::share::member_map::MemberMap;
///
/// let mut sessions = MemberMap::default();
/// sessions.insert("g", "m", 1);
/// assert_eq!(sessions.get("g", "m"), Some(&1));
/// assert!(sessions.has_group("g"));
/// assert_eq!(sessions.remove("g", "m"), Some(1));
/// assert!(!sessions.has_group("g"));
/// ```
#[derive(Debug)]
pub struct MemberMap<V>(HashMap<String, HashMap<String, V>>);

impl<V> Default for MemberMap<V> {
    fn default() -> Self {
        MemberMap(HashMap::new())
    }
}

impl<V> MemberMap<V> {
    /// Member `member` of `group`'s value.
    pub fn get(&self, group: &str, member: &str) -> Option<&V> {
        self.0.get(group)?.get(member)
    }

    /// Member `member` of `group`'s value, to change.
    pub fn get_mut(&mut self, group: &str, member: &str) -> Option<&mut V> {
        self.0.get_mut(group)?.get_mut(member)
    }

    /// Whether member `member` of `group` has a value.
    pub fn contains(&self, group: &str, member: &str) -> bool {
        self.get(group, member).is_some()
    }

    /// Whether any member of `group` has a value.
    pub fn has_group(&self, group: &str) -> bool {
        self.0.contains_key(group)
    }

    /// Sets member `member` of `group`'s value; the one it replaces. The
    /// ids are copied only for a member new to the map.
    pub fn insert(&mut self, group: &str, member: &str, value: V) -> Option<V> {
        let members = match self.0.get_mut(group) {
            Some(members) => members,
            None => self.0.entry(group.to_owned()).or_default(),
        };
        match members.get_mut(member) {
            Some(old) => Some(std::mem::replace(old, value)),
            None => members.insert(member.to_owned(), value),
        }
    }

    /// Takes member `member` of `group`'s value out; a group left with no
    /// member goes.
    pub fn remove(&mut self, group: &str, member: &str) -> Option<V> {
        let members = self.0.get_mut(group)?;
        let value = members.remove(member);
        if members.is_empty() {
            self.0.remove(group);
        }
        value
    }

    /// Keeps only the values `keep` says to; groups left with no member
    /// go.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.0.retain(|_, members| {
            members.retain(|_, v| keep(v));
            !members.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_replaced_and_removed_with_their_groups() {
        let mut m = MemberMap::default();
        assert_eq!(m.insert("g", "a", 1), None);
        assert_eq!(m.insert("g", "b", 2), None);
        assert_eq!(m.insert("g", "a", 3), Some(1));
        assert_eq!(m.insert("h", "a", 4), None);
        assert_eq!((m.get("g", "a"), m.get("h", "a")), (Some(&3), Some(&4)));
        assert!(!m.contains("g", "c") && !m.contains("x", "a"));
        if let Some(v) = m.get_mut("g", "b") {
            *v = 5;
        }
        m.retain(|v| *v != 4);
        assert!(!m.has_group("h"), "emptied by retain");
        assert_eq!(m.remove("g", "a"), Some(3));
        assert!(m.has_group("g"));
        assert_eq!(m.remove("g", "b"), Some(5));
        assert!(!m.has_group("g"), "emptied by remove");
        assert_eq!(m.remove("g", "b"), None);
    }
}
