//! x86-64 support (in progress)
