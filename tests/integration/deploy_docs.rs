//! docs/deploy.md as a newcomer follows it: the prerequisites complete (down to what
//! scripts/package.sh installs), the `func start` section in an order that works (the namespace and
//! the data roles for your own account before the host needs them), the copied binary ignored by
//! git; docs/tutorial.md naming both warehouses.

use crate::common::app_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(app_root().join(path)).unwrap()
}

/// The text of the section `heading` (`## ...`), up to the next heading of its level.
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let at = page
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let body = &page[at + heading.len() + 2..];
    body.find("\n## ").map_or(body, |end| &body[..end])
}

#[test]
fn the_prerequisites_come_first_and_name_every_tool_the_page_and_the_package_script_use() {
    let deploy = read("docs/deploy.md");
    let order: Vec<usize> = [
        "\n## Prerequisites\n",
        "\n## Run it under the Functions host (`func start`)\n",
        "\n## Deploy to Azure\n",
    ]
    .iter()
    .map(|heading| deploy.find(heading).unwrap_or_else(|| panic!("{heading}")))
    .collect();
    assert!(order.is_sorted(), "{order:?}");
    let prerequisites = section(&deploy, "## Prerequisites");
    for tool in [
        "Rust toolchain",
        "Azure CLI",
        "azure-functions-core-tools@4",
        "azurite",
        "`jq`",
    ] {
        assert!(prerequisites.contains(tool), "{tool}");
    }
    assert!(deploy.contains("| jq "), "the troubleshooting uses jq");
    // What scripts/package.sh installs with apt-get, and the Rust target it adds.
    let script = read("scripts/package.sh");
    let installed: Vec<&str> = script
        .lines()
        .filter(|line| !line.trim_start().starts_with("apt_install()"))
        .flat_map(|line| line.split("apt_install ").skip(1))
        .filter_map(|call| call.split_whitespace().next())
        .map(|package| package.trim_end_matches(';'))
        .filter(|package| !package.starts_with('"'))
        .collect();
    assert_eq!(installed, ["musl-tools", "zip"], "{script}");
    assert!(!installed.is_empty(), "{script}");
    for package in installed {
        assert!(
            prerequisites.contains(&format!("`{package}`")),
            "{package}: {prerequisites}"
        );
    }
    assert!(prerequisites.contains("`x86_64-unknown-linux-musl`"));
}

#[test]
fn func_start_gives_your_account_the_data_roles_before_the_host_needs_them_and_the_binary_is_ignored()
 {
    let deploy = read("docs/deploy.md");
    let steps = section(&deploy, "## Run it under the Functions host (`func start`)");
    let at = |text: &str| {
        steps
            .find(text)
            .unwrap_or_else(|| panic!("{text} missing: {steps}"))
    };
    let order = [
        at("az eventhubs namespace create"),
        at("az role assignment create --assignee $ME --role \"Azure Event Hubs Data Sender\""),
        at("az role assignment create --assignee $ME --role \"Azure Event Hubs Data Receiver\""),
        at("azurite"),
        at("cp target/release/handler ."),
        at("cp local.settings.json.example local.settings.json"),
        at("./handler check"),
        at("**`func start`**"),
    ];
    assert!(order.is_sorted(), "{order:?}");
    let ignored: Vec<String> = read(".gitignore").lines().map(str::to_owned).collect();
    for path in ["/handler", "local.settings.json"] {
        assert!(
            ignored.iter().any(|line| line == path),
            "{path}: {ignored:?}"
        );
    }
}

#[test]
fn the_tutorial_page_names_both_warehouses() {
    let tutorial = read("docs/tutorial.md");
    assert!(tutorial.contains("Synapse dedicated SQL pool"));
    assert!(
        tutorial.contains("Azure SQL Database (by default DTU Basic; S0 or serverless"),
        "the template's default tier is named"
    );
    assert!(!tutorial.contains("serverless Azure SQL Database"));
}
