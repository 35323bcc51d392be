//! balloon (in progress)
