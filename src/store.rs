//! The crash-safe store: what must survive a power cut, written as whole files with
//! write-temp, fsync, rename, fsync-dir, and not written at all when nothing changed.
