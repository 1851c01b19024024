//! Handing the memory a burst freed back to the kernel.
//!
//! mimalloc returns ("purges") freed pages only after a delay and only from
//! inside a later allocation or collection. After a setup storm the control
//! thread goes quiet, so the pages its setup garbage freed would stay
//! resident for as long as the sessions live.

// Linked by the `mimalloc` dependency (libmimalloc-sys builds the C
// library; its Rust binding for this call sits behind a feature we do not
// enable).
use mimalloc as _;

extern "C" {
    fn mi_collect(force: bool);
}

/// Purge the freed pages whose delay has passed (not a forced collection:
/// nothing is walked or freed early). Cheap enough for a once-a-second
/// housekeeping tick; a no-op when the process allocates with something
/// else.
pub fn purge_freed() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any
    // thread at any time.
    unsafe { mi_collect(false) }
}
