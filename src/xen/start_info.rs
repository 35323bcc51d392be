//! hvm_start_info parsing (in progress)
