pub mod ctl; pub mod daemon;
