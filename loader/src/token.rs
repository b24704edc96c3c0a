//! The integer types a batch's tokens can be delivered in.
//!
//! Shards store tokens as 2- or 4-byte little-endian ids. A trainer wants
//! them in the width its framework uses: u32 for prior's own runtime, i64
//! for PyTorch's embedding lookups and targets, u16 to halve the bytes a
//! small-vocabulary batch moves. The loader fills each batch in that width
//! straight from the decoded frame, so no batch is built twice (widened to
//! u32, then converted).
//!
//! Whatever the width, a batch's hash is defined over its tokens as
//! little-endian u32, so `prior loader hash` and every width agree.

use prior_data::TokenWidth;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// An integer type a batch can hold its tokens in.
pub trait Token: bytemuck::Pod + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// The numpy-style name (`"uint16"`, `"int64"`, ...).
    const NAME: &'static str;
    /// Ids up to this value fit.
    const MAX_ID: u64;
    /// The id `v`, which the caller has checked to fit.
    fn from_u32(v: u32) -> Self;
    fn to_u32(self) -> u32;
}

macro_rules! token {
    ($t:ty, $name:literal) => {
        impl Token for $t {
            const NAME: &'static str = $name;
            const MAX_ID: u64 = <$t>::MAX as u64;
            #[inline(always)]
            fn from_u32(v: u32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_u32(self) -> u32 {
                self as u32
            }
        }
    };
}
token!(u16, "uint16");
token!(u32, "uint32");
token!(i32, "int32");
token!(i64, "int64");

/// Appends the little-endian tokens of `width` bytes in `raw` to `out`.
/// Where `T` is as wide as the stored ids (u16 from u16 shards; u32 or i32
/// from u32 shards, ids below 2^31) this is a byte copy.
pub fn extend_le<T: Token>(width: TokenWidth, raw: &[u8], out: &mut Vec<T>) {
    let w = width.bytes();
    let n = raw.len() / w;
    out.reserve(n);
    let old = out.len();
    let dst = &mut out.spare_capacity_mut()[..n];
    if std::mem::size_of::<T>() == w {
        // SAFETY: `dst` is `n * w` bytes of spare capacity; every bit
        // pattern is a valid `T` (Pod), and little-endian ids of the same
        // width are the values themselves on this (little-endian) target.
        unsafe {
            std::ptr::copy_nonoverlapping(raw.as_ptr(), dst.as_mut_ptr() as *mut u8, n * w);
        }
    } else {
        // Writing through a zip lets the compiler vectorize the loop (an
        // `extend` over a mapped iterator does not).
        match width {
            TokenWidth::U16 => {
                for (d, c) in dst.iter_mut().zip(raw.chunks_exact(2)) {
                    d.write(T::from_u32(u16::from_le_bytes([c[0], c[1]]) as u32));
                }
            }
            TokenWidth::U32 => {
                for (d, c) in dst.iter_mut().zip(raw.chunks_exact(4)) {
                    d.write(T::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                }
            }
        }
    }
    // SAFETY: exactly `n` elements past `old` were initialised above.
    unsafe { out.set_len(old + n) };
}

/// xxh3-64 of `tokens` as little-endian u32, the same value for every
/// width. 4-byte tokens are hashed in place; others are widened through a
/// small buffer that stays in L1.
pub fn hash_u32<T: Token>(tokens: &[T]) -> u64 {
    if std::mem::size_of::<T>() == 4 {
        return xxh3_64(bytemuck::cast_slice(tokens));
    }
    let mut h = Xxh3::new();
    let mut buf = [0u32; 1024];
    for chunk in tokens.chunks(buf.len()) {
        for (d, &t) in buf.iter_mut().zip(chunk) {
            *d = t.to_u32();
        }
        h.update(bytemuck::cast_slice(&buf[..chunk.len()]));
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn le(width: TokenWidth, ids: &[u32]) -> Vec<u8> {
        ids.iter()
            .flat_map(|&t| match width {
                TokenWidth::U16 => (t as u16).to_le_bytes().to_vec(),
                TokenWidth::U32 => t.to_le_bytes().to_vec(),
            })
            .collect()
    }

    fn check<T: Token>(width: TokenWidth, ids: &[u32], prefix: &[u32]) {
        let mut out: Vec<T> = prefix.iter().map(|&t| T::from_u32(t)).collect();
        extend_le(width, &le(width, ids), &mut out);
        let got: Vec<u32> = out.iter().map(|t| t.to_u32()).collect();
        let want: Vec<u32> = prefix.iter().chain(ids).copied().collect();
        assert_eq!(got, want, "{} from {width:?}", T::NAME);
        assert_eq!(
            hash_u32(&out),
            xxh3_64(bytemuck::cast_slice(&want)),
            "{} hash",
            T::NAME
        );
    }

    proptest! {
        /// Every width holds the same ids and hashes to the same value as
        /// u32, from either stored width, after whatever came before.
        #[test]
        fn every_width_holds_and_hashes_the_same_ids(
            ids in proptest::collection::vec(0u32..=u16::MAX as u32, 0..3000),
            prefix in proptest::collection::vec(0u32..=u16::MAX as u32, 0..5),
        ) {
            for w in [TokenWidth::U16, TokenWidth::U32] {
                check::<u16>(w, &ids, &prefix);
                check::<u32>(w, &ids, &prefix);
                check::<i32>(w, &ids, &prefix);
                check::<i64>(w, &ids, &prefix);
            }
        }
    }

    #[test]
    fn wide_ids_survive_wide_types() {
        let ids = [70_000u32, 1 << 30, 5];
        check::<u32>(TokenWidth::U32, &ids, &[]);
        check::<i32>(TokenWidth::U32, &ids, &[]);
        check::<i64>(TokenWidth::U32, &ids, &[1]);
    }
}
