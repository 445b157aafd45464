//! The driver loop: the one place that blocks.
