//! `varietycash`: the one binary. Subcommands arrive with the crates they drive.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
