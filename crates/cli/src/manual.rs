//! The man pages and shell completions, generated from the CLI's own
//! definition (`clap_mangen`, `clap_complete`): `floodgate catalog
//! --write` writes them under docs/man/ and docs/completions/, and
//! `floodgate catalog --check` (CI) fails when they drift from the code.
//! `floodgate completions SHELL` prints one script to stdout.

use crate::Cli;
use clap::CommandFactory;
use clap_complete::Shell;
use floodgate_contract::GeneratedDoc;

/// The shells whose completion scripts are committed.
const COMMITTED_SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "floodgate.bash"),
    (Shell::Zsh, "_floodgate"),
    (Shell::Fish, "floodgate.fish"),
];

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> String {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "floodgate", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// One man page: `command`, named `name` (`floodgate-scenarios-run`).
fn man_page(command: clap::Command, name: &str) -> GeneratedDoc {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = clap_mangen::Man::new(command).render(&mut out);
    GeneratedDoc {
        path: format!("docs/man/{name}.1"),
        content: String::from_utf8_lossy(&out).into_owned(),
    }
}

/// `floodgate.1` and one page per subcommand, at any depth
/// (`floodgate-scenarios-run.1`), as `git`'s pages are laid out.
fn man_pages(command: clap::Command, name: &str, pages: &mut Vec<GeneratedDoc>) {
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let sub_name = format!("{name}-{}", sub.get_name());
        let sub = sub.clone().name(sub_name.clone());
        man_pages(sub, &sub_name, pages);
    }
    pages.push(man_page(command, name));
}

/// Every generated man page and committed completion script.
pub fn generated_docs() -> Vec<GeneratedDoc> {
    let mut command = Cli::command();
    command.build();
    let mut docs = Vec::new();
    man_pages(command, "floodgate", &mut docs);
    docs.sort_by(|a, b| a.path.cmp(&b.path));
    for (shell, file) in COMMITTED_SHELLS {
        docs.push(GeneratedDoc {
            path: format!("docs/completions/{file}"),
            content: completion(shell),
        });
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_has_a_page_and_every_shell_a_script() {
        let docs = generated_docs();
        let paths: Vec<&str> = docs.iter().map(|doc| doc.path.as_str()).collect();
        for expected in [
            "docs/man/floodgate.1",
            "docs/man/floodgate-serve.1",
            "docs/man/floodgate-scenarios-run.1",
            "docs/man/floodgate-scenarios-list.1",
            "docs/completions/floodgate.bash",
            "docs/completions/_floodgate",
            "docs/completions/floodgate.fish",
        ] {
            assert!(
                paths.contains(&expected),
                "{expected} missing from {paths:?}"
            );
        }
        let serve = docs
            .iter()
            .find(|doc| doc.path == "docs/man/floodgate-serve.1")
            .unwrap();
        assert!(serve.content.contains("grpc\\-addr"), "{}", serve.content);
        let bash = completion(Shell::Bash);
        assert!(bash.contains("scenarios") && bash.contains("--grpc-addr"));
    }
}
