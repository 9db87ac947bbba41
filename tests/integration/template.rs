//! infra/azuredeploy.json: the resources, roles and app settings the deployment needs, and the
//! references between them (a setting that names a resource names the one the template creates).

mod administrator;
mod arm;
mod funcignore;
mod json_keys;
mod profiles;
mod warehouse;

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::common::app_root;
use arm::Deployment;

const SITE: &str = "Microsoft.Web/sites";
const PLAN: &str = "Microsoft.Web/serverfarms";
const STORAGE: &str = "Microsoft.Storage/storageAccounts";
const CONTAINER: &str = "Microsoft.Storage/storageAccounts/blobServices/containers";
const NAMESPACE: &str = "Microsoft.EventHub/namespaces";
const HUB: &str = "Microsoft.EventHub/namespaces/eventhubs";
const CONSUMER_GROUP: &str = "Microsoft.EventHub/namespaces/eventhubs/consumergroups";
const VAULT: &str = "Microsoft.KeyVault/vaults";
const LOG_ANALYTICS: &str = "Microsoft.OperationalInsights/workspaces";
const APP_INSIGHTS: &str = "Microsoft.Insights/components";
const ROLE_ASSIGNMENT: &str = "Microsoft.Authorization/roleAssignments";
const SYNAPSE: &str = "Microsoft.Synapse/workspaces";
const SQL_POOL: &str = "Microsoft.Synapse/workspaces/sqlPools";
const ALERT: &str = "Microsoft.Insights/scheduledQueryRules";

/// Built-in role definition ids (the same in every tenant), from Azure's built-in roles list.
const EVENT_HUBS_DATA_SENDER: &str = "2b629674-e913-4c01-ae53-ef4638d8f975";
const EVENT_HUBS_DATA_RECEIVER: &str = "a638d3c7-ab3a-418d-83e6-5f17a39d4fde";
const KEY_VAULT_SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const STORAGE_BLOB_DATA_OWNER: &str = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b";
const STORAGE_QUEUE_DATA_CONTRIBUTOR: &str = "974c5e8b-45b9-4653-ba55-5f855dd0fb88";
const STORAGE_TABLE_DATA_CONTRIBUTOR: &str = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3";
const MONITORING_METRICS_PUBLISHER: &str = "3913510d-42f4-4e42-8a64-420c390055eb";

/// The files a clone of the repository holds (`git ls-files`), relative to its root.
fn git_files() -> Vec<String> {
    let output = std::process::Command::new("git")
        .arg("ls-files")
        .current_dir(app_root())
        .output()
        .expect("git runs (the tests of the app files read what a clone holds)");
    assert!(output.status.success(), "git ls-files: {output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn template() -> Value {
    read("infra/azuredeploy.json")
}

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(app_root().join(path)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn resources<'a>(t: &'a Value, kind: &str) -> Vec<&'a Value> {
    t["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"].as_str() == Some(kind))
        .collect()
}

/// The single resource of a type, created unconditionally.
fn one<'a>(t: &'a Value, kind: &str) -> &'a Value {
    let found: Vec<_> = resources(t, kind)
        .into_iter()
        .filter(|r| r.get("condition").is_none())
        .collect();
    assert_eq!(found.len(), 1, "one unconditional {kind}");
    found[0]
}

fn name(r: &Value) -> &str {
    r["name"].as_str().unwrap()
}

fn app_settings(t: &Value) -> HashMap<String, String> {
    one(t, SITE)["properties"]["siteConfig"]["appSettings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn setting(t: &Value, key: &str) -> String {
    app_settings(t)
        .remove(key)
        .unwrap_or_else(|| panic!("app setting {key} is missing"))
}

/// Every `variables('x')` or `parameters('x')` an expression in `v` uses.
fn references(v: &Value, function: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            let open = format!("{function}('");
            let mut rest = s.as_str();
            while let Some(at) = rest.find(&open) {
                let tail = &rest[at + open.len()..];
                let end = tail.find('\'').unwrap();
                out.insert(tail[..end].to_owned());
                rest = &tail[end..];
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references(i, function, out)),
        Value::Object(map) => map.values().for_each(|i| references(i, function, out)),
        _ => {}
    }
}

/// The last segment of a child resource's name, `[format('{0}/{1}', a, b)]` -> `b`.
fn last_segment(name: &str) -> String {
    let inner = name.strip_suffix(")]").unwrap_or(name);
    inner.rsplit(", ").next().unwrap().to_owned()
}

/// The role id a `roleDefinitionId` expression names, through the template's `roles` variable.
fn role_id(t: &Value, assignment: &Value) -> String {
    let expression = assignment["properties"]["roleDefinitionId"]
        .as_str()
        .unwrap();
    let key = expression
        .split("variables('roles').")
        .nth(1)
        .unwrap_or_else(|| panic!("{expression} names its role through variables('roles')"))
        .trim_end_matches(")]");
    t["variables"]["roles"][key].as_str().unwrap().to_owned()
}

#[test]
fn it_is_an_arm_template_and_the_parameters_file_sets_only_its_parameters() {
    let t = template();
    assert!(
        t["$schema"]
            .as_str()
            .unwrap()
            .contains("deploymentTemplate.json")
    );
    let parameters = read("infra/azuredeploy.parameters.json");
    assert!(
        parameters["$schema"]
            .as_str()
            .unwrap()
            .contains("deploymentParameters.json")
    );
    for name in parameters["parameters"].as_object().unwrap().keys() {
        assert!(
            t["parameters"].get(name).is_some(),
            "the parameters file sets {name}, which the template does not declare"
        );
    }
}

#[test]
fn every_variable_and_parameter_an_expression_uses_is_declared() {
    let t = template();
    for (function, section) in [("variables", "variables"), ("parameters", "parameters")] {
        let mut used = BTreeSet::new();
        references(&t, function, &mut used);
        for name in used {
            assert!(
                t[section].get(&name).is_some(),
                "{function}('{name}') is used but not declared"
            );
        }
    }
}

#[test]
fn it_creates_every_resource_the_pipeline_needs() {
    let t = template();
    for kind in [
        SITE,
        PLAN,
        STORAGE,
        CONTAINER,
        NAMESPACE,
        HUB,
        VAULT,
        LOG_ANALYTICS,
        APP_INSIGHTS,
    ] {
        one(&t, kind);
    }
    let groups = resources(&t, CONSUMER_GROUP);
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0]["condition"], "[not(variables('eventHubsBasic'))]",
        "Basic allows no consumer group besides $Default"
    );
}

#[test]
fn the_function_app_runs_the_custom_handler_on_flex_consumption_with_its_own_identity() {
    let t = template();
    let plan = one(&t, PLAN);
    assert_eq!(plan["sku"]["name"], "FC1");
    assert_eq!(plan["sku"]["tier"], "FlexConsumption");
    assert_eq!(plan["properties"]["reserved"], true, "Linux");

    let site = one(&t, SITE);
    assert!(site["kind"].as_str().unwrap().contains("linux"));
    assert_eq!(site["identity"]["type"], "SystemAssigned");
    assert!(
        site["properties"]["serverFarmId"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "'{PLAN}', {}",
                name(plan).trim_matches(['[', ']'])
            ))
    );
    let config = &site["properties"]["functionAppConfig"];
    assert_eq!(config["runtime"]["name"], "custom");
    assert_eq!(config["runtime"]["version"], "1.0");
    let storage = &config["deployment"]["storage"];
    assert_eq!(storage["type"], "blobContainer");
    assert_eq!(storage["authentication"]["type"], "SystemAssignedIdentity");
    let target = storage["value"].as_str().unwrap();
    assert!(target.contains("variables('storageAccountId')"), "{target}");
    assert!(target.contains("variables('deploymentContainerName')"));
    assert!(
        name(one(&t, CONTAINER)).contains("variables('deploymentContainerName')"),
        "the deployment container is created"
    );
}

#[test]
fn every_setting_the_host_and_the_handler_read_is_wired() {
    let settings = app_settings(&template());
    for key in [
        "AzureWebJobsStorage__accountName",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "EventHubConnection__fullyQualifiedNamespace",
        "EVENT_HUB_NAME",
        "EVENT_HUB_CONSUMER_GROUP",
        "KEY_VAULT_URL",
        "COINCAP_API_KEY_SECRET",
        "FETCH_SCHEDULE",
        "WAREHOUSE",
        "SQL_SERVER",
        "SQL_DATABASE",
    ] {
        assert!(settings.contains_key(key), "app setting {key} is missing");
    }
    for renamed in coincap_stream::config::RENAMED {
        assert!(
            !settings.contains_key(renamed.old),
            "{}: the template writes the current name, {}",
            renamed.old,
            renamed.name
        );
    }
    assert!(
        !settings.contains_key("FUNCTIONS_WORKER_RUNTIME"),
        "Flex Consumption takes the runtime from functionAppConfig and refuses this setting"
    );
    assert!(
        settings.keys().all(
            |k| !k.contains("ConnectionString") || k == "APPLICATIONINSIGHTS_CONNECTION_STRING"
        ),
        "no connection string with a key"
    );
}

#[test]
fn every_app_setting_the_function_bindings_name_is_wired() {
    let settings = app_settings(&template());
    for function in ["TimerFetch", "EventHubSink"] {
        let bindings = read(&format!("{function}/function.json"));
        for binding in bindings["bindings"].as_array().unwrap() {
            for value in binding.as_object().unwrap().values() {
                if let Some(name) = value
                    .as_str()
                    .and_then(|s| s.strip_prefix('%'))
                    .and_then(|s| s.strip_suffix('%'))
                {
                    assert!(settings.contains_key(name), "{function} reads %{name}%");
                }
            }
            if let Some(connection) = binding["connection"].as_str() {
                let key = format!("{connection}__fullyQualifiedNamespace");
                assert!(settings.contains_key(&key), "{function} connects via {key}");
            }
        }
    }
}

#[test]
fn host_storage_is_the_storage_account_the_template_creates() {
    let t = template();
    assert_eq!(
        setting(&t, "AzureWebJobsStorage__accountName"),
        name(one(&t, STORAGE))
    );
    assert_eq!(
        setting(&t, "AzureWebJobsStorage__credential"),
        "managedidentity"
    );
    assert_eq!(
        one(&t, STORAGE)["properties"]["allowSharedKeyAccess"],
        false,
        "identity only"
    );
}

#[test]
fn the_event_hubs_settings_name_the_namespace_hub_and_consumer_group_it_creates() {
    let t = template();
    let namespace = name(one(&t, NAMESPACE)).trim_matches(['[', ']']).to_owned();
    let fqdn = setting(&t, "EventHubConnection__fullyQualifiedNamespace");
    assert!(
        fqdn.contains("reference(variables('eventHubNamespaceId')"),
        "{fqdn} is the host of the endpoint the namespace it creates reports"
    );
    assert_eq!(
        t["variables"]["eventHubNamespaceId"],
        format!("[resourceId('{NAMESPACE}', {namespace})]")
    );

    let hub = name(one(&t, HUB));
    assert!(hub.contains(&namespace), "{hub}");
    assert_eq!(
        last_segment(hub),
        setting(&t, "EVENT_HUB_NAME").trim_matches(['[', ']'])
    );
    let group = resources(&t, CONSUMER_GROUP)[0];
    assert!(name(group).contains(&last_segment(hub)), "{}", name(group));
    assert_ne!(
        t["parameters"]["eventHubConsumerGroup"]["defaultValue"], "$Default",
        "on Standard and Premium the sink reads through its own consumer group"
    );
    // The setting names the group the deployment creates, or $Default where Basic allows no other.
    for (sku, expected, created) in [
        ("Basic", "$Default", false),
        ("Standard", "coincap-sink", true),
        ("Premium", "coincap-sink", true),
    ] {
        let parameters = json!({"eventHubsSku": sku, "sqlAdminObjectId": ADMIN});
        let deployment = Deployment::new(&t, parameters.clone());
        let consumer_group = deployment
            .value(&json!(setting(&t, "EVENT_HUB_CONSUMER_GROUP")))
            .unwrap();
        assert_eq!(consumer_group, expected, "{sku}");
        let made = conditions(&t, parameters)
            .unwrap()
            .into_iter()
            .any(|(kind, _, made)| kind == CONSUMER_GROUP && made);
        assert_eq!(made, created, "{sku}");
        if created {
            assert_eq!(
                deployment.value(&json!(name(group))).unwrap(),
                format!("evhns-coincap-tok3n/coincaphub/{expected}")
            );
        }
    }

    assert_eq!(
        one(&t, HUB)["properties"]["partitionCount"],
        "[parameters('eventHubPartitionCount')]"
    );
    assert_eq!(
        t["parameters"]["eventHubPartitionCount"]["type"], "int",
        "the partition count is a parameter"
    );
}

#[test]
fn the_key_vault_settings_name_the_vault_it_creates_in_rbac_mode() {
    let t = template();
    let vault = one(&t, VAULT);
    assert_eq!(vault["properties"]["enableRbacAuthorization"], true);
    let vault_name = name(vault).trim_matches(['[', ']']).to_owned();
    let url = setting(&t, "KEY_VAULT_URL");
    assert!(url.contains(&vault_name), "{url}");
    assert!(url.contains("environment().suffixes.keyvaultDns"), "{url}");
    assert_eq!(
        setting(&t, "COINCAP_API_KEY_SECRET"),
        "[variables('coincapSecretName')]"
    );
    assert_eq!(t["variables"]["coincapSecretName"], "coincap-api-key");
    let settings = app_settings(&t);
    let secrets = coincap_stream::secrets::SecretName::ALL.map(|name| name.env_var());
    for secret in secrets.into_iter().chain(["SYNAPSE_CONNECTION_STRING"]) {
        assert!(
            !settings.contains_key(secret),
            "{secret}: no secret in app settings, not even a Key Vault reference; the handler reads the vault"
        );
    }
}

#[test]
fn application_insights_is_the_one_it_creates_on_its_log_analytics_workspace() {
    let t = template();
    let connection = setting(&t, "APPLICATIONINSIGHTS_CONNECTION_STRING");
    assert!(
        connection.contains("variables('appInsightsId')"),
        "{connection}"
    );
    assert_eq!(
        t["variables"]["appInsightsId"],
        format!(
            "[resourceId('{APP_INSIGHTS}', {})]",
            name(one(&t, APP_INSIGHTS)).trim_matches(['[', ']'])
        )
    );
    let workspace = one(&t, APP_INSIGHTS)["properties"]["WorkspaceResourceId"]
        .as_str()
        .unwrap();
    assert!(workspace.contains(name(one(&t, LOG_ANALYTICS)).trim_matches(['[', ']'])));
}

#[test]
fn the_sql_settings_name_the_pool_it_creates_or_the_existing_one() {
    let t = template();
    assert_eq!(setting(&t, "SQL_DATABASE"), "[variables('sqlDatabase')]");
    let server = setting(&t, "SQL_SERVER");
    assert!(server.contains("if(variables('createSynapse'), reference("));
    assert!(server.contains("variables('synapseWorkspaceName')"));
    assert!(server.contains(".connectivityEndpoints.sql"));
    assert!(server.contains("parameters('existingSynapseServer')"));
    let database = t["variables"]["sqlDatabase"].as_str().unwrap();
    assert!(database.contains("parameters('synapseSqlPoolName')"));
    assert!(database.contains("parameters('existingSynapseDatabase')"));

    let workspace = resources(&t, SYNAPSE);
    assert_eq!(workspace.len(), 1);
    assert_eq!(workspace[0]["condition"], "[variables('createSynapse')]");
    assert!(name(workspace[0]).contains("variables('synapseWorkspaceName')"));
    let pool = resources(&t, SQL_POOL);
    assert_eq!(pool.len(), 1);
    assert_eq!(pool[0]["condition"], "[variables('createSynapse')]");
    assert!(name(pool[0]).contains("parameters('synapseSqlPoolName')"));
}

#[test]
fn the_app_identity_gets_the_built_in_roles_it_needs_on_the_resources_it_uses() {
    let t = template();
    let expected = [
        (EVENT_HUBS_DATA_SENDER, NAMESPACE, "eventHubNamespaceName"),
        (EVENT_HUBS_DATA_RECEIVER, NAMESPACE, "eventHubNamespaceName"),
        (KEY_VAULT_SECRETS_USER, VAULT, "keyVaultName"),
        (STORAGE_BLOB_DATA_OWNER, STORAGE, "storageAccountName"),
        (
            STORAGE_QUEUE_DATA_CONTRIBUTOR,
            STORAGE,
            "storageAccountName",
        ),
        (
            STORAGE_TABLE_DATA_CONTRIBUTOR,
            STORAGE,
            "storageAccountName",
        ),
        (
            MONITORING_METRICS_PUBLISHER,
            APP_INSIGHTS,
            "appInsightsName",
        ),
    ];
    let for_the_app: Vec<_> = resources(&t, ROLE_ASSIGNMENT)
        .into_iter()
        .filter(|a| {
            a["properties"]["principalId"]
                .as_str()
                .unwrap()
                .contains("reference(variables('siteId')")
        })
        .collect();
    assert_eq!(for_the_app.len(), expected.len(), "no role more, none less");
    for (role, kind, variable) in expected {
        let assignment = for_the_app
            .iter()
            .find(|a| role_id(&t, a) == role)
            .unwrap_or_else(|| panic!("no assignment of role {role}"));
        let scope = assignment["scope"].as_str().unwrap();
        assert_eq!(
            scope,
            format!("[format('{kind}/{{0}}', variables('{variable}'))]"),
            "role {role} is scoped to the {kind} the template creates"
        );
        let principal = assignment["properties"]["principalId"].as_str().unwrap();
        assert!(principal.ends_with(".identity.principalId]"), "{principal}");
        assert_eq!(
            assignment["properties"]["principalType"],
            "ServicePrincipal"
        );
        let depends: Vec<&str> = assignment["dependsOn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert!(depends.contains(&"[variables('siteId')]"));
        assert_eq!(
            t["variables"]["siteId"],
            format!(
                "[resourceId('{SITE}', {})]",
                name(one(&t, SITE)).trim_matches(['[', ']'])
            )
        );
    }
}

#[test]
fn role_assignment_names_are_deterministic_and_distinct() {
    let t = template();
    let names: Vec<&str> = resources(&t, ROLE_ASSIGNMENT)
        .into_iter()
        .map(name)
        .collect();
    let distinct: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), distinct.len());
    assert!(names.iter().all(|n| n.starts_with("[guid(")));
}

#[test]
fn alert_rules_watch_failures_lag_and_missing_rows_in_application_insights() {
    let t = template();
    let alerts = resources(&t, ALERT);
    let names: Vec<&str> = alerts.iter().map(|a| name(a)).collect();
    for suffix in [
        "failed-invocations",
        "end-to-end-lag",
        "no-rows",
        "coincap-credits",
    ] {
        assert!(names.iter().any(|n| n.contains(suffix)), "{names:?}");
    }
    for alert in alerts {
        assert_eq!(
            alert["properties"]["scopes"][0],
            "[variables('appInsightsId')]",
            "{}",
            name(alert)
        );
    }
}

#[test]
fn alert_rules_wait_for_their_action_group() {
    let t = template();
    for rule in resources(&t, ALERT) {
        let depends = rule["dependsOn"].as_array().unwrap();
        assert!(
            depends.iter().any(|d| d == "[variables('actionGroupId')]"),
            "{}: created in parallel with its action group otherwise",
            name(rule)
        );
    }
}

#[test]
fn the_site_waits_for_every_resource_its_settings_read_with_reference() {
    // ARM adds an implicit dependency only for reference() by name, not by resource id
    // ("Define the order for deploying resources in ARM templates"; "Resource functions",
    // reference: "Implicit dependency"). Conditional ones not deployed drop out of dependsOn.
    let t = template();
    let site = one(&t, SITE);
    let depends: Vec<&str> = site["dependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let text = site["properties"]["siteConfig"].to_string();
    let mut found = 0;
    for (at, _) in text.match_indices("reference(resourceId(") {
        let inner = &text[at + "reference(".len()..];
        let mut depth = 0;
        let end = inner
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0 && c == ')'
            })
            .unwrap()
            .0;
        let id = format!("[{}]", &inner[..=end]);
        found += 1;
        assert!(depends.contains(&id.as_str()), "{id} is not in {depends:?}");
    }
    assert!(found >= 2, "the pool's and the server's host names");
}

#[test]
fn a_conditional_synapse_workspace_is_only_referenced_behind_its_condition() {
    // ARM evaluates reference() even for a skipped resource: unguarded, deploySynapse=false
    // fails, and so does deploySynapse=true when warehouseKind=sqlDatabase creates no workspace.
    let t = template();
    for r in t["resources"].as_array().unwrap() {
        let text = r.to_string();
        if r.get("condition").is_some()
            && text.contains("reference(resourceId('Microsoft.Synapse/workspaces'")
        {
            assert!(
                text.contains("if(variables('createSynapse'), reference("),
                "{}: reference() to the conditional workspace must sit inside if() of its condition",
                name(r)
            );
        }
    }
    let admin = resources(&t, "Microsoft.Synapse/workspaces/administrators");
    assert_eq!(
        admin[0]["condition"], "[variables('createSynapse')]",
        "the Entra admin comes with the pool (createSynapse refuses an empty object id)"
    );
}

#[test]
fn rows_go_to_a_file_on_an_instance_only_when_the_smoke_test_parameter_says_so() {
    let t = template();
    assert_eq!(
        setting(&t, "WAREHOUSE"),
        "[parameters('warehouse')]",
        "no fallback: a deployment without a warehouse is refused, not pointed at a file"
    );
    assert_eq!(t["parameters"]["warehouse"]["defaultValue"], "sql");
    assert!(
        t["parameters"]["warehouse"]["metadata"]["description"]
            .as_str()
            .unwrap()
            .contains("sqlite:/tmp/coincap.db"),
        "the smoke test says so in the parameter of its own"
    );
}

/// `hh:mm:ss` (the host's TimeSpan form in host.json) in seconds.
fn timespan_seconds(text: &str) -> u64 {
    let parts: Vec<u64> = text.split(':').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts.len(), 3, "{text} is hh:mm:ss");
    parts[0] * 3600 + parts[1] * 60 + parts[2]
}

#[test]
fn host_json_has_no_http_forwarding_without_an_http_trigger() {
    let host = read("host.json");
    assert!(
        host["customHandler"]
            .get("enableForwardingHttpRequest")
            .is_none(),
        "only meaningful for an HTTP trigger; this app has none"
    );
}

#[test]
fn event_hubs_batches_fill_one_warehouse_statement_and_the_wait_is_not_ignored() {
    let hubs = &read("host.json")["extensions"]["eventHubs"];
    let max = hubs["maxEventBatchSize"].as_u64().unwrap();
    let min = hubs["minEventBatchSize"].as_u64().unwrap();
    let rows_per_statement =
        coincap_stream::warehouse::sql::statement::BATCH_LIMITS.max_rows as u64;
    assert_eq!(
        max, rows_per_statement,
        "one invocation = one INSERT of the Synapse writer (fewer, larger statements on a dedicated pool)"
    );
    assert!(
        min > 1 && min < max,
        "maxWaitTime is ignored while minEventBatchSize is 1, and min must stay below max"
    );
    let wait = timespan_seconds(hubs["maxWaitTime"].as_str().unwrap());
    assert!(
        wait > 0 && wait <= 600,
        "the extension allows up to 10 minutes"
    );
    assert!(
        wait * 1000 * 2
            < template()["parameters"]["lagAlertThresholdMs"]["defaultValue"]
                .as_u64()
                .unwrap(),
        "waiting (up to twice maxWaitTime after scaling) must not by itself trip the lag alert"
    );
    assert!(
        hubs["prefetchCount"].as_u64().unwrap() >= max,
        "a full batch needs at least maxEventBatchSize events in the local cache"
    );
}

#[test]
fn the_hub_keeps_events_longer_than_a_one_day_sink_outage() {
    let t = template();
    let days = &t["parameters"]["eventHubRetentionDays"];
    assert!(days["defaultValue"].as_u64().unwrap() >= 2, "{days}");
    assert_eq!(days["maxValue"], 7, "Standard keeps events at most 7 days");
    let retention = &one(&t, HUB)["properties"]["messageRetentionInDays"];
    for (sku, expected) in [("Standard", 7), ("Premium", 7), ("Basic", 1)] {
        let deployment = Deployment::new(&t, json!({"eventHubsSku": sku}));
        assert_eq!(
            deployment.value(retention).unwrap(),
            expected,
            "{sku}: Basic keeps events 1 day at most (\"Event Hubs quotas and limits\")"
        );
    }
    let description = t["parameters"]["eventHubsSku"]["metadata"]["description"]
        .as_str()
        .unwrap();
    assert!(
        description.contains("1 day") && description.contains("$Default"),
        "the learner profile's 1-day retention is stated where Basic is chosen: {description}"
    );
}

/// The text of an alert rule's query: the variable it names, expression and all (the KQL sits in
/// its string literals).
fn alert_query(t: &Value, rule: &Value) -> String {
    let query = rule["properties"]["criteria"]["allOf"][0]["query"]
        .as_str()
        .unwrap();
    let variable = query
        .strip_prefix("[variables('")
        .and_then(|q| q.strip_suffix("')]"))
        .unwrap_or_else(|| panic!("{query}: a query lives in a variable"));
    let mut text = t["variables"][variable].as_str().unwrap().to_owned();
    // One level of variables inside (the sink's closing lines).
    let mut inner = BTreeSet::new();
    references(&Value::String(text.clone()), "variables", &mut inner);
    for name in inner {
        text.push('\n');
        text.push_str(t["variables"][&name].as_str().unwrap());
    }
    text
}

/// Property names of `Microsoft.Insights/scheduledQueryRules` in the GA API version 2023-12-01
/// (azure-rest-api-specs: monitor/resource-manager/Microsoft.Insights/stable/2023-12-01/
/// scheduledQueryRule_API.json), read-only ones left out.
const RULE_PROPERTIES_2023_12_01: [&str; 17] = [
    "description",
    "displayName",
    "severity",
    "enabled",
    "scopes",
    "evaluationFrequency",
    "windowSize",
    "overrideQueryTimeRange",
    "targetResourceTypes",
    "criteria",
    "muteActionsDuration",
    "actions",
    "checkWorkspaceAlertsStorageConfigured",
    "skipQueryValidation",
    "autoMitigate",
    "ruleResolveConfiguration",
    "kind",
];
const CONDITION_PROPERTIES_2023_12_01: [&str; 9] = [
    "query",
    "timeAggregation",
    "metricMeasureColumn",
    "resourceIdColumn",
    "dimensions",
    "operator",
    "threshold",
    "failingPeriods",
    "metricName",
];

#[test]
fn alert_rules_use_the_ga_api_version_and_only_its_properties() {
    let t = template();
    for rule in resources(&t, ALERT) {
        assert_eq!(
            rule["apiVersion"],
            "2023-12-01",
            "{}: GA, not a preview",
            name(rule)
        );
        assert_eq!(rule["kind"], "LogAlert");
        for key in rule["properties"].as_object().unwrap().keys() {
            assert!(
                RULE_PROPERTIES_2023_12_01.contains(&key.as_str()),
                "{}: {key} is not a property of the 2023-12-01 schema",
                name(rule)
            );
        }
        for condition in rule["properties"]["criteria"]["allOf"].as_array().unwrap() {
            for key in condition.as_object().unwrap().keys() {
                assert!(
                    CONDITION_PROPERTIES_2023_12_01.contains(&key.as_str()),
                    "{}: condition property {key}",
                    name(rule)
                );
            }
            let aggregation = condition["timeAggregation"].as_str().unwrap();
            assert!(
                ["Count", "Average", "Minimum", "Maximum", "Total"].contains(&aggregation),
                "{aggregation}"
            );
            assert_eq!(
                aggregation == "Count",
                condition.get("metricMeasureColumn").is_none(),
                "{}: Count counts rows; any other aggregation needs a measure column",
                name(rule)
            );
        }
    }
}

#[test]
fn alert_queries_start_from_a_table_without_union_or_search() {
    // Log search alert rules refuse `union` and `search` except in cross-resource queries
    // (Microsoft Learn, "Optimize log search alert queries").
    let t = template();
    for rule in resources(&t, ALERT) {
        let query = alert_query(&t, rule);
        let words: Vec<&str> = query
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        for operator in ["union", "search"] {
            assert!(
                !words.contains(&operator),
                "{}: {operator} in\n{query}",
                name(rule)
            );
        }
        for line in query
            .lines()
            .filter(|l| l.trim_start().starts_with("| summarize"))
        {
            assert!(
                line.contains(" by "),
                "{}: an alert query that aggregates keeps a time bin or dimension: {line}",
                name(rule)
            );
        }
    }
}

#[test]
fn the_no_rows_alert_counts_sink_lines_that_wrote_rows_and_fires_on_none() {
    let t = template();
    let rule = resources(&t, ALERT)
        .into_iter()
        .find(|r| name(r).contains("no-rows"))
        .unwrap();
    let condition = &rule["properties"]["criteria"]["allOf"][0];
    assert_eq!(condition["timeAggregation"], "Count");
    assert!(condition.get("metricMeasureColumn").is_none());
    assert_eq!(condition["operator"], "LessThan");
    assert_eq!(
        condition["threshold"], 1,
        "no line at all in the window fires"
    );
    let query = alert_query(&t, rule);
    assert!(query.contains("function=EventHubSink"), "{query}");
    assert!(query.contains("| where rows_written > 0"), "{query}");
}

#[test]
fn the_lag_alert_reads_the_batches_the_warehouse_refuses_too() {
    // A database that refuses every batch (its free allowance spent, say) leaves no closing line:
    // its failure lines carry lag_ms, so the lag alert sees the sink fall behind.
    let t = template();
    let rule = resources(&t, ALERT)
        .into_iter()
        .find(|r| name(r).contains("end-to-end-lag"))
        .unwrap();
    let query = alert_query(&t, rule);
    for needed in [
        "function=EventHubSink",
        "Invocation finished.",
        "Invocation failed.",
        "\\blag_ms=",
    ] {
        assert!(query.contains(needed), "{needed} in\n{query}");
    }
    let kql = read_text("monitoring/queries.kql");
    let lag = kql
        .split("// ==== ")
        .find(|section| section.starts_with("End-to-end lag"))
        .unwrap();
    assert!(lag.contains("Invocation failed."), "{lag}");
}

fn read_text(path: &str) -> String {
    std::fs::read_to_string(app_root().join(path)).unwrap()
}

#[test]
fn the_credits_alert_fires_at_80_percent_of_the_monthly_budget_s_daily_share() {
    let t = template();
    let rule = resources(&t, ALERT)
        .into_iter()
        .find(|r| name(r).contains("coincap-credits"))
        .expect("an alert on CoinCap credits");
    let condition = &rule["properties"]["criteria"]["allOf"][0];
    assert_eq!(condition["timeAggregation"], "Total");
    assert_eq!(condition["metricMeasureColumn"], "credits");
    assert_eq!(condition["operator"], "GreaterThan");
    assert_eq!(rule["properties"]["windowSize"], "P1D");
    for (budget, daily) in [(2500, 64), (100_000, 2580)] {
        let deployment = Deployment::new(&t, json!({"coincapMonthlyCredits": budget}));
        let threshold = deployment.value(&condition["threshold"]).unwrap();
        assert_eq!(
            threshold,
            json!(daily),
            "80% of {budget} over a 31-day month is {daily} a day (rounded down)"
        );
    }
    let query = alert_query(&t, rule);
    assert!(
        query.contains("function=TimerFetch") && query.contains("\\bcredits="),
        "{query}"
    );
    assert_eq!(
        setting(&t, "COINCAP_MONTHLY_CREDITS"),
        "[string(parameters('coincapMonthlyCredits'))]"
    );
}

const ADMIN: &str = "00000000-0000-0000-0000-00000000a11c";

/// Every resource's condition, evaluated for one set of parameters.
fn conditions(t: &Value, parameters: Value) -> Result<Vec<(String, String, bool)>, String> {
    let deployment = Deployment::new(t, parameters);
    t["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.get("condition").map(|c| (r, c)))
        .map(|(r, c)| {
            let created = deployment.value(c)?.as_bool().unwrap();
            Ok((
                r["type"].as_str().unwrap().to_owned(),
                name(r).to_owned(),
                created,
            ))
        })
        .collect()
}

#[test]
fn the_template_refuses_a_pool_without_an_entra_administrator() {
    let t = template();
    let pool = |extra: Value| {
        let mut parameters = json!({"warehouseKind": "synapsePool", "deploySynapse": true});
        for (key, value) in extra.as_object().unwrap() {
            parameters[key] = value.clone();
        }
        parameters
    };
    let refused = conditions(&t, pool(json!({}))).unwrap_err();
    assert!(
        refused.contains("deploySynapse=true needs sqlAdminObjectId"),
        "ARM shows this: {refused}"
    );
    let refused = conditions(&t, pool(json!({"sqlAdminObjectId": ""}))).unwrap_err();
    assert!(refused.contains("sqlAdminObjectId"), "{refused}");

    let with_admin = conditions(&t, pool(json!({"sqlAdminObjectId": ADMIN}))).unwrap();
    for kind in [
        SYNAPSE,
        SQL_POOL,
        "Microsoft.Synapse/workspaces/administrators",
    ] {
        assert!(
            with_admin
                .iter()
                .any(|(k, _, created)| k == kind && *created),
            "{kind} is created with an admin: {with_admin:?}"
        );
    }
    let without_pool = conditions(
        &t,
        json!({"warehouseKind": "synapsePool", "existingSynapseServer": "mine.sql.azuresynapse.net", "existingSynapseDatabase": "dw"}),
    )
    .unwrap();
    assert!(
        without_pool
            .iter()
            .all(|(k, _, created)| !k.starts_with("Microsoft.Synapse/") || !created),
        "{without_pool:?}"
    );
    // No Synapse resource escapes the check.
    for r in t["resources"].as_array().unwrap() {
        if r["type"]
            .as_str()
            .unwrap()
            .starts_with("Microsoft.Synapse/")
        {
            assert!(
                r["condition"]
                    .as_str()
                    .unwrap()
                    .contains("variables('createSynapse')"),
                "{}",
                name(r)
            );
        }
    }
}

/// The values infra/azuredeploy.parameters.json gives, by parameter name.
fn parameter_values() -> serde_json::Map<String, Value> {
    read("infra/azuredeploy.parameters.json")["parameters"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["value"].clone()))
        .collect()
}

#[test]
fn the_parameters_file_deploys_as_it_is() {
    // With the one value that is yours to give (docs/deploy.md, step 2), and without it refused
    // by name.
    let t = template();
    let mut values = parameter_values();
    assert!(
        !values.contains_key("sqlAdminObjectId"),
        "the file holds nobody's object id"
    );
    let refused = conditions(&t, Value::Object(values.clone())).unwrap_err();
    assert!(refused.contains("needs sqlAdminObjectId"), "{refused}");
    values.insert("sqlAdminObjectId".into(), json!(ADMIN));
    conditions(&t, Value::Object(values)).unwrap();
}

/// App settings and outputs evaluated in a cloud, with the endpoints its resources report.
fn deployed_in(t: &Value, environment: Value, parameters: Value) -> HashMap<String, String> {
    let mut deployment = Deployment::new(t, parameters);
    let cloud = environment["name"].as_str().unwrap().to_owned();
    deployment.environment = environment;
    let (bus, synapse) = match cloud.as_str() {
        "AzureCloud" => ("servicebus.windows.net", "sql.azuresynapse.net"),
        _ => ("servicebus.chinacloudapi.cn", "sql.azuresynapse.azure.cn"),
    };
    let sql_suffix = deployment.environment["suffixes"]["sqlServerHostname"]
        .as_str()
        .unwrap()
        .to_owned();
    deployment.references.insert(
        "Microsoft.Sql/servers/sql-coincap-tok3n".into(),
        json!({
            "fullyQualifiedDomainName": format!("sql-coincap-tok3n{sql_suffix}"),
            "identity": {"principalId": "server-principal"}
        }),
    );
    deployment.references.insert(
        format!("{NAMESPACE}/evhns-coincap-tok3n"),
        json!({"serviceBusEndpoint": format!("https://evhns-coincap-tok3n.{bus}:443/")}),
    );
    deployment.references.insert(
        format!("{SYNAPSE}/synw-coincap-tok3n"),
        json!({"connectivityEndpoints": {
            "dev": format!("https://synw-coincap-tok3n.dev.{}", &synapse[4..]),
            "sql": format!("synw-coincap-tok3n.{synapse}"),
            "sqlOnDemand": format!("synw-coincap-tok3n-ondemand.{synapse}")
        }}),
    );
    let mut out = HashMap::new();
    for (key, value) in app_settings(t) {
        if ["APPLICATIONINSIGHTS_CONNECTION_STRING"].contains(&key.as_str()) {
            continue;
        }
        let v = deployment.value(&Value::String(value)).unwrap();
        out.insert(key, v.as_str().unwrap().to_owned());
    }
    for (key, output) in t["outputs"].as_object().unwrap() {
        if key == "principalId" {
            continue;
        }
        let v = deployment.value(&output["value"]).unwrap();
        out.insert(format!("output {key}"), v.as_str().unwrap().to_owned());
    }
    out
}

#[test]
fn host_names_come_from_the_cloud_and_the_resources_so_a_sovereign_cloud_can_deploy_it() {
    let t = template();
    let pool =
        json!({"warehouseKind": "synapsePool", "deploySynapse": true, "sqlAdminObjectId": ADMIN});
    let public = deployed_in(&t, arm::public_cloud(), pool.clone());
    assert_eq!(
        public["EventHubConnection__fullyQualifiedNamespace"],
        "evhns-coincap-tok3n.servicebus.windows.net"
    );
    assert_eq!(
        public["SQL_SERVER"],
        "synw-coincap-tok3n.sql.azuresynapse.net"
    );
    assert_eq!(
        public["KEY_VAULT_URL"],
        "https://kv-coincap-tok3n.vault.azure.net/"
    );

    let china = deployed_in(&t, arm::china_cloud(), pool);
    let china_sql = deployed_in(
        &t,
        arm::china_cloud(),
        json!({"warehouseKind": "sqlDatabase", "sqlAdminObjectId": ADMIN}),
    );
    assert_eq!(
        china_sql["SQL_SERVER"], "sql-coincap-tok3n.database.chinacloudapi.cn",
        "the server's host name is the one it reports"
    );
    assert_eq!(
        china["EventHubConnection__fullyQualifiedNamespace"],
        "evhns-coincap-tok3n.servicebus.chinacloudapi.cn"
    );
    assert_eq!(
        china["output eventHubNamespace"],
        china["EventHubConnection__fullyQualifiedNamespace"]
    );
    assert_eq!(
        china["SQL_SERVER"],
        "synw-coincap-tok3n.sql.azuresynapse.azure.cn"
    );
    assert_eq!(china["output sqlServer"], china["SQL_SERVER"]);
    assert_eq!(china_sql["output sqlServer"], china_sql["SQL_SERVER"]);
    assert_eq!(
        china["KEY_VAULT_URL"],
        "https://kv-coincap-tok3n.vault.azure.cn/"
    );
    for (key, value) in china.iter().chain(&china_sql) {
        for public_suffix in ["windows.net", "azure.net", "azuresynapse.net", "azure.com"] {
            assert!(
                !value.ends_with(public_suffix) && !value.contains(&format!("{public_suffix}/")),
                "{key} = {value} names the public cloud"
            );
        }
    }

    let existing = deployed_in(
        &t,
        arm::china_cloud(),
        json!({"warehouseKind": "synapsePool", "existingSynapseServer": "mine.sql.azuresynapse.azure.cn", "existingSynapseDatabase": "dw"}),
    );
    assert_eq!(existing["SQL_SERVER"], "mine.sql.azuresynapse.azure.cn");
    assert_eq!(existing["SQL_DATABASE"], "dw");
}

/// Every string of the template that ARM acts on: descriptions, comments and the schema URL aside.
fn acted_on_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| acted_on_strings(i, out)),
        Value::Object(map) => {
            for (key, value) in map {
                if !["metadata", "comments", "description", "$schema"].contains(&key.as_str()) {
                    acted_on_strings(value, out);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn no_public_cloud_host_name_is_written_into_the_template() {
    let t = template();
    let mut strings = Vec::new();
    acted_on_strings(&t, &mut strings);
    for s in strings {
        for suffix in [
            "windows.net",
            "azure.net",
            "azuresynapse.net",
            "azure.com",
            "chinacloudapi.cn",
            "usgovcloudapi.net",
        ] {
            assert!(
                !s.contains(suffix),
                "{s}: use environment().suffixes or the endpoint the resource reports"
            );
        }
    }
}

#[test]
fn every_documented_core_tools_publish_names_the_custom_runtime() {
    // dist/app (and a fresh clone) has no local.settings.json: without --custom Core Tools stops
    // with "Worker runtime is not set".
    let mut found = 0;
    for page in git_files().into_iter().filter(|f| f.ends_with(".md")) {
        let text = std::fs::read_to_string(app_root().join(&page)).unwrap();
        for line in text.lines().filter(|l| l.contains("functionapp publish")) {
            found += 1;
            assert!(line.contains("--custom"), "{page}: {line}");
        }
    }
    assert!(found > 0, "the deploy steps show the publish command");
}

fn deploy_steps() -> String {
    std::fs::read_to_string(app_root().join("docs/deploy.md")).unwrap()
}

#[test]
fn the_deploy_steps_prepare_what_init_warehouse_checks() {
    // ARM has no pool property for READ_COMMITTED_SNAPSHOT: the steps say how to set it (from
    // master) and that init-warehouse creates the writer lock table.
    let steps = deploy_steps();
    assert!(steps.contains("SET READ_COMMITTED_SNAPSHOT ON"), "{steps}");
    assert!(steps.contains("`master`"));
    assert!(steps.contains("assets.asset_statistics_writer_lock"));
}

#[test]
fn the_deploy_steps_set_both_warehouses_side_by_side_with_costs_and_guarantees() {
    let steps = deploy_steps();
    for needed in [
        "warehouseKind=sqlDatabase",
        "warehouseKind=synapsePool",
        "sqlDatabaseTier",
        "sqlDatabaseFreeOffer",
        "initWarehouseCommand",
        "AllowAllWindowsAzureIps",
        // Microsoft's pages the facts come from, cited by title.
        "Azure SQL Database pricing",
        "Deploy Azure SQL Database for free",
        "Serverless compute tier for Azure SQL Database",
        "Resource limits for single databases using the DTU purchasing model",
        "Event Hubs quotas and limits",
    ] {
        assert!(steps.contains(needed), "docs/deploy.md: {needed}");
    }
    // The learner profile's one-line deploy: the defaults and the one value that is yours.
    let one_line = steps
        .lines()
        .find(|line| line.starts_with("az deployment group create -g $RG"))
        .expect("a one-line deploy");
    assert!(
        one_line.ends_with(
            "--parameters sqlAdminObjectId=$(az ad signed-in-user show --query id -o tsv)"
        ),
        "{one_line}"
    );
    assert!(
        !steps.contains("SYNAPSE_SERVER"),
        "the steps use the current setting names"
    );
}

#[test]
fn the_deploy_steps_state_the_catch_up_after_a_one_day_outage_at_both_schedules() {
    let steps = deploy_steps();
    let max = read("host.json")["extensions"]["eventHubs"]["maxEventBatchSize"]
        .as_u64()
        .unwrap();
    let ticks_a_day = 24 * 60 / 5;
    for assets in [100u64, 2000] {
        let backlog = assets * ticks_a_day;
        let shown = grouped(backlog);
        assert!(
            steps.contains(&shown),
            "deploy.md shows the backlog {shown}"
        );
        assert!(
            steps.contains(&format!("{assets} assets")),
            "{assets} assets"
        );
    }
    assert!(steps.contains(&format!("`maxEventBatchSize` | {max} |")));
}

/// `1234567` -> `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first `N rows/s` of the row of docs/performance.md's table that starts with `row`.
fn measured_rows_a_second(performance: &str, row: &str) -> u64 {
    let line = performance
        .lines()
        .find(|line| line.starts_with(row))
        .unwrap_or_else(|| panic!("performance.md has a row {row:?}"));
    let before = line.split(" rows/s").next().unwrap();
    let number = before.rsplit(' ').next().unwrap().trim_start_matches('*');
    number.replace(',', "").parse().unwrap()
}

#[test]
fn the_catch_up_is_computed_from_the_writer_rates_performance_md_measured() {
    let steps = deploy_steps();
    let performance = std::fs::read_to_string(app_root().join("docs/performance.md")).unwrap();
    let bulk = measured_rows_a_second(&performance, "| **Bulk writer** (as deployed");
    let text = measured_rows_a_second(&performance, "| Text writer (`SQL_BULK_LOAD=off`");
    for rate in [bulk, text] {
        assert!(
            steps.contains(&format!("{} rows a second", grouped(rate))),
            "deploy.md uses the rate measured: {rate}"
        );
    }
    for assets in [100u64, 2000] {
        let backlog = assets * 288;
        let arrivals = assets as f64 / 300.0;
        for rate in [bulk, text] {
            let net = rate as f64 - arrivals;
            let seconds = backlog as f64 / net;
            let shown = if seconds < 10.0 {
                format!("{seconds:.1} s")
            } else {
                format!("{seconds:.0} s")
            };
            let tenths = (net * 10.0).round() as u64;
            let line = format!(
                "{} / {}.{} ≈ {shown}",
                grouped(backlog),
                grouped(tenths / 10),
                tenths % 10
            );
            assert!(steps.contains(&line), "deploy.md shows {line}");
        }
    }
    assert!(
        !steps.contains("500 rows a second"),
        "the earlier version's rate is gone"
    );
}
