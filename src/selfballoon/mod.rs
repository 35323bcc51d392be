//! selfballoon (in progress)
