//! Typed device buffers: a handle, an element count, upload and download,
//! and views.
//!
//! Deliberately small: the model keeps one flat parameter buffer and one
//! flat gradient buffer and hands kernels views of them; shapes live with
//! the code that knows them (llm.c style), not in a general tensor type.

use std::marker::PhantomData;

use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::error::{Result, RuntimeError};

/// Views into a buffer start at multiples of this many bytes: storage
/// buffer bindings must be aligned (256 bytes is the strictest common limit).
pub const VIEW_ALIGN_BYTES: usize = 256;

/// `len` elements of `T` on the device of a `ComputeClient<R>`, possibly a
/// view of a larger allocation (see [`Buf::view`]).
pub struct Buf<R: Runtime, T: CubeElement> {
    pub handle: Handle,
    pub len: usize,
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

    pub fn upload(client: &ComputeClient<R>, data: &[T]) -> Self {
        let handle = client.create_from_slice(T::as_bytes(data));
        Self::whole(handle, data.len())
    }

    /// Uninitialised storage; kernels that write every element fill it.
    pub fn empty(client: &ComputeClient<R>, len: usize) -> Self {
        let handle = client.empty(len.max(1) * std::mem::size_of::<T>());
        Self::whole(handle, len)
    }

    /// Elements `[offset, offset + len)` of this buffer, sharing its memory
    /// (how the model gives kernels one tensor of the flat parameter and
    /// gradient buffers). The start must be a multiple of
    /// [`Buf::view_align`] elements of the underlying allocation.
    pub fn view(&self, offset: usize, len: usize) -> Self {
        let sz = std::mem::size_of::<T>();
        let start = self.offset + offset;
        assert!(
            offset + len <= self.len,
            "view {offset}+{len} outside a buffer of {}",
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
        // SAFETY: the handle holds at least `len` elements of `T`.
        unsafe { ArrayArg::from_raw_parts(self.handle.clone(), self.len.max(1)) }
    }
}

/// Surfaces errors of launched work (cubecl defers them to a sync).
pub fn sync<R: Runtime>(client: &ComputeClient<R>) -> Result<()> {
    cubecl::future::block_on(client.sync())
        .map_err(|e| RuntimeError::Device(format!("device work failed: {e:?}")))
}
