//! Man pages and shell completions generated from the clap definitions
//! (`--generate man|complete-bash|complete-zsh|complete-fish` on every binary).
