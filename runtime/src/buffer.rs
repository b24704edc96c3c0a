//! Typed device buffers: a handle, an element count, upload and download,
//! views, and the device's largest-buffer limit.
//!
//! Deliberately small: the model keeps one flat parameter buffer and one
//! flat gradient buffer and hands kernels views of them; shapes live with
//! the code that knows them (llm.c style), not in a general tensor type.
//!
//! The handle and the length are private: [`Buf::arg`] hands kernels a raw
//! array of `len` elements over the handle (an `unsafe` promise to cubecl),
//! and only the constructors here, which allocate or slice exactly that
//! much, may set the two together.
//!
//! Devices cap the size of one buffer (wgpu: the storage-binding limit,
//! 128 MiB on Mesa's lavapipe; cubecl on CUDA: a quarter of device memory).
//! Past it cubecl does not fail at allocation but at the next sync, with an
//! error that names no buffer, so [`Buf::empty_named`] and
//! [`Buf::upload_named`] refuse such a buffer up front with its name, its
//! size and the limit ([`RuntimeError::BufferTooLarge`]).

use std::fmt;
use std::marker::PhantomData;

use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::error::{Result, RuntimeError};

/// Views into a buffer start at multiples of this many bytes: storage
/// buffer bindings must be aligned (256 bytes is the strictest common limit).
pub const VIEW_ALIGN_BYTES: usize = 256;

/// `len` elements of `T` on the device of a `ComputeClient<R>`, possibly a
/// view of a larger allocation (see [`Buf::view`]).
///
/// The fields are private so that safe code cannot pair a handle with a
/// length it does not hold:
///
/// ```compile_fail
/// fn grow<R: cubecl::Runtime>(b: &mut prior_runtime::buffer::Buf<R, f32>) {
///     b.len = usize::MAX;
/// }
/// ```
///
/// Reading them goes through accessors:
///
/// ```
/// fn len<R: cubecl::Runtime>(b: &prior_runtime::buffer::Buf<R, f32>) -> usize {
///     let _ = b.handle();
///     b.len()
/// }
/// ```
pub struct Buf<R: Runtime, T: CubeElement> {
    /// Covers exactly elements `[offset, offset + len)` of `base` (or, for
    /// an empty whole buffer, its one placeholder element).
    handle: Handle,
    len: usize,
    /// The whole allocation, and where this buffer starts in it (elements).
    base: Handle,
    offset: usize,
    total: usize,
    _marker: PhantomData<(R, T)>,
}

impl<R: Runtime, T: CubeElement> Clone for Buf<R, T> {
    fn clone(&self) -> Self {
        Buf {
            handle: self.handle.clone(),
            len: self.len,
            base: self.base.clone(),
            offset: self.offset,
            total: self.total,
            _marker: PhantomData,
        }
    }
}

impl<R: Runtime, T: CubeElement> Buf<R, T> {
    fn whole(handle: Handle, len: usize) -> Self {
        Buf {
            base: handle.clone(),
            handle,
            len,
            offset: 0,
            total: len.max(1),
            _marker: PhantomData,
        }
    }

    /// A copy of `data` on the device. For buffers whose size the caller
    /// has bounded; sizes that come from user input go through
    /// [`Buf::upload_named`].
    pub fn upload(client: &ComputeClient<R>, data: &[T]) -> Self {
        let handle = client.create_from_slice(T::as_bytes(data));
        Self::whole(handle, data.len())
    }

    /// Uninitialised storage; kernels that write every element fill it.
    /// For buffers whose size the caller has bounded; sizes that come from
    /// user input go through [`Buf::empty_named`].
    pub fn empty(client: &ComputeClient<R>, len: usize) -> Self {
        let handle = client.empty(len.max(1) * std::mem::size_of::<T>());
        Self::whole(handle, len)
    }

    /// [`Buf::empty`], refused with [`RuntimeError::BufferTooLarge`] (naming
    /// the buffer `name`) when it exceeds the device's largest buffer.
    pub fn empty_named(client: &ComputeClient<R>, len: usize, name: &str) -> Result<Self> {
        BufferLimit::of(client).check(name, Self::bytes_for(len))?;
        Ok(Self::empty(client, len))
    }

    /// [`Buf::upload`], refused with [`RuntimeError::BufferTooLarge`]
    /// (naming the buffer `name`) when it exceeds the device's largest buffer.
    pub fn upload_named(client: &ComputeClient<R>, data: &[T], name: &str) -> Result<Self> {
        BufferLimit::of(client).check(name, Self::bytes_for(data.len()))?;
        Ok(Self::upload(client, data))
    }

    /// Bytes an allocation of `len` elements takes (at least one element,
    /// as the constructors allocate).
    pub fn bytes_for(len: usize) -> u64 {
        (len.max(1) as u64).saturating_mul(std::mem::size_of::<T>() as u64)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device memory of exactly this buffer (a view's own range), for
    /// launches that need more than [`Buf::arg`] (strided tensors).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Elements `[offset, offset + len)` of this buffer, sharing its memory
    /// (how the model gives kernels one tensor of the flat parameter and
    /// gradient buffers). The start must be a multiple of
    /// [`Buf::view_align`] elements of the underlying allocation, and a view
    /// holds at least one element (a kernel handed an empty view would be
    /// told of one element and write into the neighbouring tensor).
    pub fn view(&self, offset: usize, len: usize) -> Self {
        let sz = std::mem::size_of::<T>();
        let start = self.offset + offset;
        assert!(
            len > 0 && offset + len <= self.len,
            "view {offset}+{len} outside a buffer of {} (or empty)",
            self.len
        );
        assert!(
            (start * sz).is_multiple_of(VIEW_ALIGN_BYTES),
            "view offset {start} is not aligned to {VIEW_ALIGN_BYTES} bytes"
        );
        let handle = self
            .base
            .clone()
            .offset_start((start * sz) as u64)
            .offset_end(((self.total - start - len) * sz) as u64);
        Buf {
            handle,
            len,
            base: self.base.clone(),
            offset: start,
            total: self.total,
            _marker: PhantomData,
        }
    }

    /// This very buffer as a `Buf<R, U>` when `U` is `T` (the f32 model's
    /// compute-type weights are its master weights); None for another type.
    pub fn as_same_type<U: CubeElement>(&self) -> Option<Buf<R, U>> {
        (std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>()).then(|| Buf {
            handle: self.handle.clone(),
            len: self.len,
            base: self.base.clone(),
            offset: self.offset,
            total: self.total,
            _marker: PhantomData,
        })
    }

    /// The element multiple views must start at.
    pub fn view_align() -> usize {
        VIEW_ALIGN_BYTES / std::mem::size_of::<T>()
    }

    /// Waits for pending work and copies the buffer back.
    pub fn download(&self, client: &ComputeClient<R>) -> Result<Vec<T>> {
        let bytes = client
            .read_one(self.handle.clone())
            .map_err(|e| RuntimeError::Device(format!("reading a buffer back failed: {e:?}")))?;
        Ok(T::from_bytes(&bytes)[..self.len].to_vec())
    }

    /// Kernel argument over the whole buffer.
    pub fn arg(&self) -> ArrayArg<R> {
        // SAFETY: `handle` and `len` are private and set together only by
        // the constructors above: `whole` over an allocation of
        // `len.max(1)` elements, `view` over `len >= 1` elements inside its
        // parent. So the handle holds at least `len.max(1)` elements of `T`.
        unsafe { ArrayArg::from_raw_parts(self.handle.clone(), self.len.max(1)) }
    }
}

/// The largest single buffer a device takes, and what sets that limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimit {
    /// Bytes; a buffer of more is refused.
    pub bytes: u64,
    /// What the limit is, for messages ("storage-binding limit").
    pub what: &'static str,
}

impl BufferLimit {
    /// The limit of `client`'s device. cubecl's memory manager takes no
    /// allocation beyond `max_page_size`, which cubecl-wgpu sets to the
    /// adapter's `max_storage_buffer_binding_size` and cubecl-cuda to a
    /// quarter of device memory; pages are multiples of the alignment, so
    /// the usable size is rounded down to it.
    pub fn of<R: Runtime>(client: &ComputeClient<R>) -> Self {
        let mem = &client.properties().memory;
        let align = mem.alignment.max(1);
        let what = match R::name(client) {
            n if n.starts_with("wgpu") => "storage-binding limit",
            "cuda" => "single-allocation limit (a quarter of device memory)",
            _ => "single-allocation limit",
        };
        BufferLimit {
            bytes: mem.max_page_size / align * align,
            what,
        }
    }

    /// Refuses a buffer `name` of `bytes` bytes that exceeds the limit.
    pub fn check(&self, name: &str, bytes: u64) -> Result<()> {
        if bytes <= self.bytes {
            return Ok(());
        }
        Err(RuntimeError::BufferTooLarge {
            name: name.to_string(),
            bytes,
            limit: *self,
            advice: String::new(),
        })
    }
}

impl fmt::Display for BufferLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({} bytes)",
            mib(self.bytes),
            self.what,
            self.bytes
        )
    }
}

/// `bytes` in MiB for messages: "196.5 MiB".
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Surfaces errors of launched work (cubecl defers them to a sync).
pub fn sync<R: Runtime>(client: &ComputeClient<R>) -> Result<()> {
    cubecl::future::block_on(client.sync())
        .map_err(|e| RuntimeError::Device(format!("device work failed: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAVAPIPE: BufferLimit = BufferLimit {
        bytes: 128 << 20,
        what: "storage-binding limit",
    };

    #[test]
    fn a_buffer_at_the_limit_passes_and_one_byte_more_is_refused_by_name() {
        assert!(LAVAPIPE.check("at the limit", 128 << 20).is_ok());
        let err = LAVAPIPE
            .check("logits [batch*seq, vocab] f32", (128 << 20) + 1)
            .expect_err("over the limit");
        let msg = err.to_string();
        for part in [
            "logits [batch*seq, vocab] f32",
            "134217729 bytes",
            "128.0 MiB storage-binding limit (134217728 bytes)",
        ] {
            assert!(msg.contains(part), "{part:?} missing from {msg:?}");
        }
    }
}
