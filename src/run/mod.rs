//! Running images without a daemon, and checking them: the last step of the flow,
//! consuming [`crate::image::Image`] values as the writers do.
//!
//! - [`unpack`]: layers applied to a directory, never writing outside it;
//! - [`process`]: Docker's rules for the first process (command, environment, user);
//! - [`sandbox`]: namespaces, mounts and signals around it (`speck run`);
//! - [`check`]: static and live checks of an image, each with a verdict and a fix.
//!
//! Must not build or write images.

pub mod check;
pub mod process;
pub mod sandbox;
pub mod unpack;

pub use process::Overrides;
pub use sandbox::{Network, RunError, RunOptions, Started, run, start};
