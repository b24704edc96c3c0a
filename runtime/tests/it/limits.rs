//! A buffer past the device's largest-buffer limit is refused when it is
//! asked for, by name, size and limit, and leaves the device usable; without
//! the refusal cubecl fails only at the next sync, naming no buffer.

use cubecl::prelude::*;
use prior_runtime::buffer::{sync, Buf, BufferLimit};
use prior_runtime::device::{run_on, DeviceKind, OnDevice};
use prior_runtime::RuntimeError;

struct OverLimit;

impl OnDevice for OverLimit {
    type Output = ();
    fn run<R: Runtime>(self, client: ComputeClient<R>, _: &prior_runtime::DeviceInfo) {
        let limit = BufferLimit::of(&client);
        println!("{}: {limit}", R::name(&client));
        assert!(limit.bytes > 0, "{limit:?}");
        assert_eq!(limit.what, "storage-binding limit", "on wgpu");

        let too_many = (limit.bytes / 4 + 1) as usize;
        let name = "logits [batch*seq, vocab] f32";
        let err = match Buf::<R, f32>::empty_named(&client, too_many, name) {
            Ok(_) => panic!("{too_many} f32s ({} bytes) were accepted", too_many * 4),
            Err(e) => e,
        };
        match &err {
            RuntimeError::BufferTooLarge {
                name: n,
                bytes,
                limit: l,
                ..
            } => {
                assert_eq!(n, name);
                assert_eq!(*bytes, too_many as u64 * 4);
                assert_eq!(*l, limit);
            }
            other => panic!("not BufferTooLarge: {other:?}"),
        }
        let msg = err.to_string();
        for part in [
            name.to_string(),
            format!("{} bytes", too_many * 4),
            format!("{} bytes", limit.bytes),
            "storage-binding limit".to_string(),
        ] {
            assert!(msg.contains(&part), "{part:?} missing from {msg:?}");
        }

        // Nothing was sent to the device: it still syncs and computes.
        sync(&client).expect("the device is healthy after a refusal");
        let small = Buf::<R, f32>::upload_named(&client, &[1.0, 2.0, 3.0], "small")
            .expect("three floats fit");
        assert_eq!(small.len(), 3);
        assert_eq!(small.download(&client).unwrap(), [1.0, 2.0, 3.0]);
    }
}

#[test]
fn a_buffer_past_the_device_limit_is_refused_by_name_before_launch() {
    run_on(DeviceKind::Wgpu, OverLimit).expect("a wgpu device (ci/setup installs lavapipe)");
}
