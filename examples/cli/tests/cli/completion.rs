//! `faas completion SHELL`.

use crate::support::Home;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_scripts() {
    let home = Home::empty();
    let bash = home.run(&["completion", "bash"]).await;
    let text = bash.ok();
    assert!(text.contains("_faas()"), "{text}");
    assert!(text.contains("complete -F _faas"), "{text}");
    // The subcommands and their flags are there.
    assert!(text.contains("activation"), "{text}");
    assert!(text.contains("--web-secure"), "{text}");
    let zsh = home.run(&["completion", "zsh"]).await;
    assert!(zsh.ok().starts_with("#compdef faas"), "{zsh:?}");
    let fish = home.run(&["completion", "fish"]).await;
    assert!(fish.ok().contains("complete -c faas"), "{fish:?}");
    let out = home.run(&["completion", "tcsh"]).await;
    assert_eq!(out.code, 2, "{out:?}");
}
