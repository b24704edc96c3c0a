//! FlashAttention forward and backward on wgpu against the CPU reference:
//! fresh random inputs each run (the seed is printed), sequence lengths
//! from 1 to 2048 including non-multiples of every tile, Pythia's head
//! sizes, f32 and f16 (where the device has it); bit-identical results run
//! to run; and key blocks past the diagonal never read.

use cubecl::prelude::*;
use half::f16;
use prior_runtime::buffer::Buf;
use prior_runtime::check::rel_err;
use prior_runtime::device::{run_on, DeviceInfo, DeviceKind, OnDevice};
use prior_runtime::kernels::attention::{self, plan, Pass};
use prior_runtime::kernels::AttnShape;
use prior_runtime::reference as cpu;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// f32 against the f64 reference (as `prior runtime check`).
const F32_TOL: f64 = 2e-4;
/// f16 storage: inputs are exact, but the outputs, P and dS are rounded to
/// f16 (unit roundoff 4.9e-4) before they are summed or stored.
const F16_TOL: f64 = 2e-3;

fn seed() -> u64 {
    std::env::var("PRIOR_CHECK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

fn shape(batch: usize, seq: usize, heads: usize, head_dim: usize) -> AttnShape {
    AttnShape {
        batch,
        seq,
        heads,
        head_dim,
        rotary_dims: head_dim / 4,
    }
}

/// Uniform in [-scale, scale], rounded through `F` so the reference sees
/// exactly what the device does.
fn rand_vec<F: Host>(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| to_f32(from_f32::<F>(rng.random_range(-scale..scale))))
        .collect()
}

/// The storage types under test, converted on the host.
trait Host: Float + CubeElement {
    fn from_f32(v: f32) -> Self;
}
impl Host for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }
}
impl Host for f16 {
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}

fn from_f32<F: Host>(v: f32) -> F {
    F::from_f32(v)
}

fn to_f32<F: Host>(v: F) -> f32 {
    v.to_f32().unwrap()
}

/// Device results of one forward and backward: (out, lse, dqkv).
struct Run {
    out: Vec<f32>,
    lse: Vec<f32>,
    dqkv: Vec<f32>,
}

fn run_flash<R: Runtime, F: Host>(
    client: &ComputeClient<R>,
    s: AttnShape,
    qkv: &[f32],
    dout: &[f32],
) -> Run {
    let up = |v: &[f32]| {
        let h: Vec<F> = v.iter().map(|&x| from_f32::<F>(x)).collect();
        Buf::<R, F>::upload(client, &h)
    };
    let down = |b: &Buf<R, F>| -> Vec<f32> {
        b.download(client)
            .expect("download")
            .into_iter()
            .map(to_f32)
            .collect()
    };
    let rows = s.batch * s.heads * s.seq;
    let qkv_b = up(qkv);
    let out = Buf::<R, F>::empty(client, s.tokens() * s.heads * s.head_dim);
    let lse = Buf::<R, f32>::empty(client, rows);
    attention::attention_fwd(client, &qkv_b, &out, &lse, s).unwrap();
    let delta = Buf::<R, f32>::empty(client, rows);
    let dqkv = Buf::<R, F>::empty(client, qkv.len());
    attention::attention_bwd(client, &up(dout), &qkv_b, &out, &lse, &delta, &dqkv, s).unwrap();
    Run {
        out: down(&out),
        lse: lse.download(client).expect("download"),
        dqkv: down(&dqkv),
    }
}

/// Max relative errors (out, lse, dqkv) against the reference.
fn errors<R: Runtime, F: Host>(
    client: &ComputeClient<R>,
    rng: &mut ChaCha8Rng,
    s: AttnShape,
) -> [f64; 3] {
    let qkv = rand_vec::<F>(rng, s.tokens() * s.heads * 3 * s.head_dim, 2.0);
    let dout = rand_vec::<F>(rng, s.tokens() * s.heads * s.head_dim, 1.0);
    let got = run_flash::<R, F>(client, s, &qkv, &dout);
    let (out, lse) = cpu::attention_fwd(&qkv, s);
    let dqkv = cpu::attention_bwd(&dout, &qkv, s);
    [
        rel_err(&got.out, &out),
        rel_err(&got.lse, &lse),
        rel_err(&got.dqkv, &dqkv),
    ]
}

fn assert_matches<R: Runtime, F: Host>(
    client: &ComputeClient<R>,
    rng: &mut ChaCha8Rng,
    shapes: &[AttnShape],
    tol: f64,
) {
    for &s in shapes {
        let errs = errors::<R, F>(client, rng, s);
        let tiles = [Pass::Forward, Pass::BackwardKv, Pass::BackwardQ]
            .map(|p| plan::<R, F>(client, s.head_dim, p));
        println!(
            "{} {s:?}: out {:.2e} lse {:.2e} dqkv {:.2e}, tiles {:?}",
            F::type_name(),
            errs[0],
            errs[1],
            errs[2],
            tiles.map(|t| (t.br, t.bc, t.cmma))
        );
        for (what, e) in ["out", "lse", "dqkv"].iter().zip(errs) {
            assert!(
                e <= tol,
                "{} {what} {s:?}: max_rel_err {e:.3e} > {tol:e}",
                F::type_name()
            );
        }
    }
}

fn long_and_odd_shapes() -> Vec<AttnShape> {
    let mut v: Vec<AttnShape> = [1, 2, 15, 16, 17, 63, 64, 65, 130, 513]
        .iter()
        .map(|&t| shape(2, t, 2, 64))
        .collect();
    v.push(shape(1, 2048, 1, 64));
    for d in [16, 80, 128, 256] {
        v.push(shape(1, 1, 1, d));
        v.push(shape(1, 97, 2, d));
    }
    v
}

struct Matches(u64);
impl OnDevice for Matches {
    type Output = ();
    fn run<R: Runtime>(self, client: ComputeClient<R>, _: &DeviceInfo) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.0);
        assert_matches::<R, f32>(&client, &mut rng, &long_and_odd_shapes(), F32_TOL);
        if !client.properties().supports_type(f16::cube_type()) {
            println!(
                "f16 attention not checked: the device ({}) has no f16",
                R::name(&client)
            );
            return;
        }
        let f16_shapes: Vec<AttnShape> = long_and_odd_shapes()
            .into_iter()
            .filter(|s| s.seq < 2048)
            .chain([shape(1, 1024, 1, 64)])
            .collect();
        assert_matches::<R, f16>(&client, &mut rng, &f16_shapes, F16_TOL);
    }
}

#[test]
fn flash_attention_matches_the_reference_at_every_head_size_and_odd_lengths() {
    let seed = seed();
    println!("seed {seed} (replay with PRIOR_CHECK_SEED={seed})");
    run_on(DeviceKind::Wgpu, Matches(seed)).expect("a wgpu device (ci/setup installs lavapipe)");
}

struct Repeatable;
impl OnDevice for Repeatable {
    type Output = ();
    fn run<R: Runtime>(self, client: ComputeClient<R>, _: &DeviceInfo) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let s = shape(2, 300, 3, 64);
        let qkv = rand_vec::<f32>(&mut rng, s.tokens() * s.heads * 3 * s.head_dim, 2.0);
        let dout = rand_vec::<f32>(&mut rng, s.tokens() * s.heads * s.head_dim, 1.0);
        let a = run_flash::<R, f32>(&client, s, &qkv, &dout);
        let b = run_flash::<R, f32>(&client, s, &qkv, &dout);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.out), bits(&b.out), "out differs between runs");
        assert_eq!(bits(&a.lse), bits(&b.lse), "lse differs between runs");
        assert_eq!(bits(&a.dqkv), bits(&b.dqkv), "dqkv differs between runs");
    }
}

#[test]
fn flash_attention_is_bit_identical_run_to_run() {
    run_on(DeviceKind::Wgpu, Repeatable).expect("wgpu");
}

/// Poisons (NaN) every key and value a causal block must not read, and
/// every query and output gradient a key block must not read: any load of
/// a skipped block would spread NaN through `0 * NaN` into the products.
struct SkipsMaskedBlocks;
impl OnDevice for SkipsMaskedBlocks {
    type Output = ();
    fn run<R: Runtime>(self, client: ComputeClient<R>, _: &DeviceInfo) {
        let d = 64;
        let fwd = plan::<R, f32>(&client, d, Pass::Forward);
        let q = plan::<R, f32>(&client, d, Pass::BackwardQ);
        let kv = plan::<R, f32>(&client, d, Pass::BackwardKv);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let s = shape(1, 4 * fwd.br.max(q.br).max(kv.bc).max(kv.br), 1, d);
        let clean = rand_vec::<f32>(&mut rng, s.tokens() * 3 * d, 2.0);
        let dout = rand_vec::<f32>(&mut rng, s.tokens() * d, 1.0);
        let (out_ref, _) = cpu::attention_fwd(&clean, s);
        let dqkv_ref = cpu::attention_bwd(&dout, &clean, s);

        // Forward and dQ: the first query block of each pass sees keys
        // below its end only; later keys and values are NaN.
        let first_q = fwd.br.max(q.br);
        let mut poisoned = clean.clone();
        for t in first_q..s.seq {
            for c in d..3 * d {
                poisoned[t * 3 * d + c] = f32::NAN;
            }
        }
        let got = run_flash::<R, f32>(&client, s, &poisoned, &dout);
        let rows = fwd.br.min(q.br);
        let e_out = rel_err(&got.out[..rows * d], &out_ref[..rows * d]);
        assert!(
            e_out <= F32_TOL,
            "forward read a key block past the diagonal: {e_out}"
        );
        let dq: Vec<f32> = (0..rows * d)
            .map(|i| got.dqkv[(i / d) * 3 * d + i % d])
            .collect();
        let dq_ref: Vec<f32> = (0..rows * d)
            .map(|i| dqkv_ref[(i / d) * 3 * d + i % d])
            .collect();
        let e_dq = rel_err(&dq, &dq_ref);
        assert!(
            e_dq <= F32_TOL,
            "dQ read a key block past the diagonal: {e_dq}"
        );

        // dK/dV: the last key block sees only the query blocks from its own
        // on; earlier queries and output gradients are NaN.
        let k0 = s.seq - kv.bc;
        let first_seen = k0 / kv.br * kv.br;
        let mut poisoned = clean.clone();
        let mut dout_poisoned = dout.clone();
        for t in 0..first_seen {
            for c in 0..d {
                poisoned[t * 3 * d + c] = f32::NAN;
                dout_poisoned[t * d + c] = f32::NAN;
            }
        }
        let got = run_flash::<R, f32>(&client, s, &poisoned, &dout_poisoned);
        let pick = |v: &[f32]| -> Vec<f32> {
            (k0..s.seq)
                .flat_map(|t| v[t * 3 * d + d..t * 3 * d + 3 * d].to_vec())
                .collect()
        };
        let e_kv = rel_err(&pick(&got.dqkv), &pick(&dqkv_ref));
        assert!(
            e_kv <= F32_TOL,
            "dK/dV read a query block before the diagonal: {e_kv}"
        );
    }
}

#[test]
fn causal_blocks_past_the_diagonal_are_never_read() {
    run_on(DeviceKind::Wgpu, SkipsMaskedBlocks).expect("wgpu");
}
