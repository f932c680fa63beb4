pub mod ctl;
pub mod daemon;
pub mod docgen;
