//! Host tests of the swap tier against models.
