//! Keyed bijections on `[0, n)`: the O(1)-memory shuffles behind every
//! epoch's block order.
//!
//! A balanced Feistel network over the smallest even number of bits that
//! covers `n`, with cycle walking to stay inside the domain: a permutation
//! of any size, evaluated at one point in a few hashes, without building
//! anything proportional to `n`. Round keys come from ChaCha20 seeded with
//! the caller's key, so the permutation is fixed by (key, n) alone.

use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use xxhash_rust::xxh3::xxh3_64_with_seed;

const ROUNDS: usize = 6;

#[derive(Debug, Clone)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    round_keys: [u64; ROUNDS],
}

impl Permutation {
    pub fn new(n: u64, key: u64) -> Permutation {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut rng = ChaCha20Rng::seed_from_u64(key);
        let mut round_keys = [0u64; ROUNDS];
        for k in &mut round_keys {
            *k = rng.next_u64();
        }
        Permutation {
            n,
            half_bits,
            round_keys,
        }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for &k in &self.round_keys {
            let f = xxh3_64_with_seed(&r.to_le_bytes(), k) & mask;
            (l, r) = (r, l ^ f);
        }
        (l << self.half_bits) | r
    }

    /// The image of `i` (which must be below `len()`).
    pub fn apply(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        // The Feistel domain is at most 4n, so the walk ends after a few
        // steps on average and always ends (it is a cycle through i).
        let mut x = self.feistel(i);
        while x >= self.n {
            x = self.feistel(x);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn is_a_bijection(n in 1u64..3000, key in any::<u64>()) {
            let p = Permutation::new(n, key);
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let j = p.apply(i);
                prop_assert!(j < n);
                prop_assert!(!seen[j as usize]);
                seen[j as usize] = true;
            }
        }
    }

    #[test]
    fn different_keys_give_different_orders() {
        let a: Vec<u64> = (0..100)
            .map(|i| Permutation::new(100, 1).apply(i))
            .collect();
        let b: Vec<u64> = (0..100)
            .map(|i| Permutation::new(100, 2).apply(i))
            .collect();
        assert_ne!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
    }
}
