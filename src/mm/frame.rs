//! Physical frame allocator (in progress)
