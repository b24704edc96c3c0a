//! Typed device buffers: a handle, an element count, upload and download.
//!
//! Deliberately small: the model keeps one flat parameter buffer and one
//! flat gradient buffer and hands kernels views of them; shapes live with
//! the code that knows them (llm.c style), not in a general tensor type.

use std::marker::PhantomData;

use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::error::{Result, RuntimeError};

/// `len` elements of `T` on the device of a `ComputeClient<R>`.
pub struct Buf<R: Runtime, T: CubeElement> {
    pub handle: Handle,
    pub len: usize,
    _marker: PhantomData<(R, T)>,
}

impl<R: Runtime, T: CubeElement> Clone for Buf<R, T> {
    fn clone(&self) -> Self {
        Buf {
            handle: self.handle.clone(),
            len: self.len,
            _marker: PhantomData,
        }
    }
}

impl<R: Runtime, T: CubeElement> Buf<R, T> {
    pub fn upload(client: &ComputeClient<R>, data: &[T]) -> Self {
        let handle = client.create_from_slice(T::as_bytes(data));
        Buf {
            handle,
            len: data.len(),
            _marker: PhantomData,
        }
    }

    /// Uninitialised storage; kernels that write every element fill it.
    pub fn empty(client: &ComputeClient<R>, len: usize) -> Self {
        let handle = client.empty(len.max(1) * std::mem::size_of::<T>());
        Buf {
            handle,
            len,
            _marker: PhantomData,
        }
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
