//! Kernel command line parsing (in progress).
