//! `--help` in the user's language: the English texts are the doc comments clap derives; a
//! catalogue per language (`locales/zh-CN.json`) replaces them by command path (`identity
//! get`) and argument (`identity get purpose`, or `addr` for a flag every command shares).
//! A text the catalogue lacks stays English, so a command added without its translation is
//! still explained.

use std::collections::HashMap;

use clap::Command;

/// One language's texts: what each command is for, and each argument's help.
#[derive(Debug, Default, serde::Deserialize)]
struct Catalogue {
    commands: HashMap<String, String>,
    arguments: HashMap<String, String>,
}

const ZH_CN: &str = include_str!("../locales/zh-CN.json");

/// The command with its help in the user's language (Chinese under a Chinese locale).
pub fn localized(command: Command) -> Command {
    if !crate::terms::chinese_locale() {
        return command;
    }
    match serde_json::from_str::<Catalogue>(ZH_CN) {
        Ok(catalogue) => translate(command, "", &catalogue),
        Err(_) => command,
    }
}

fn translate(mut command: Command, path: &str, catalogue: &Catalogue) -> Command {
    if let Some(text) = catalogue.commands.get(path) {
        command = command.about(text.clone()).long_about(None);
    }
    // clap's own words: the headings, and the help flag, which clap adds itself unless told not to.
    command = command
        .help_template("{before-help}{about-with-newline}\n用法：{usage}\n\n{all-args}{after-help}")
        .subcommand_help_heading("命令")
        .disable_help_flag(true)
        .arg(
            clap::Arg::new("help")
                .short('h')
                .long("help")
                .action(clap::ArgAction::Help)
                .help("显示帮助"),
        );
    let arguments: Vec<String> = command.get_arguments().map(|a| a.get_id().to_string()).collect();
    for id in arguments {
        let specific = key(path, &id);
        let text = catalogue
            .arguments
            .get(&specific)
            .or_else(|| catalogue.arguments.get(&id))
            .cloned();
        command = command.mut_arg(id, |argument| {
            let heading = if argument.is_positional() { "参数" } else { "选项" };
            let argument = argument.help_heading(heading);
            match text {
                Some(text) => argument.help(text).long_help(None),
                None => argument,
            }
        });
    }
    let subcommands: Vec<String> = command.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in subcommands {
        let child = key(path, &name);
        command = command.mut_subcommand(name, |sub| translate(sub, &child, catalogue));
    }
    command
}

/// A command's or argument's key under `path`: `identity get`, `identity get purpose`.
fn key(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path} {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_of_the_catalogue_names_a_command_or_argument_that_exists() {
        let catalogue: Catalogue = serde_json::from_str(ZH_CN).expect("the catalogue is JSON");
        let root = <crate::Cli as clap::CommandFactory>::command();
        let find = |path: &str| {
            let mut command = &root;
            for name in path.split_whitespace() {
                command = command.find_subcommand(name)?;
            }
            Some(command)
        };
        for path in catalogue.commands.keys() {
            assert!(find(path).is_some(), "no command {path:?}");
        }
        for key in catalogue.arguments.keys() {
            let (path, id) = key.rsplit_once(' ').unwrap_or(("", key));
            if path.is_empty() {
                continue;
            }
            let command = find(path).unwrap_or_else(|| panic!("no command {path:?}"));
            assert!(
                command.get_arguments().any(|a| a.get_id() == id),
                "{path} has no argument {id}"
            );
        }
    }
}
