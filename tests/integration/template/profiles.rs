//! The profiles the template deploys, evaluated: the learner profile (what the defaults deploy:
//! Azure SQL Database Basic, Event Hubs Basic through `$Default`, 10 assets hourly), every
//! database tier, and every combination of warehouse, tier and Event Hubs SKU. The evaluated
//! resources of every combination are what the offline schema check validates (docs/deploy.md,
//! "Every combination, checked against Azure's schemas").

use serde_json::{Map, Value, json};

use coincap_stream::coincap::credits::{Estimate, MONTH_DAYS, Measured};
use coincap_stream::config::{Config, Mode};
use coincap_stream::local::Schedule;

use super::warehouse::{
    SMOKE_TEST, SQL_API, SQL_DATABASE, conditional, created, creates, deploy, deployment,
    sql_database, with,
};
use super::{ADMIN, CONSUMER_GROUP, NAMESPACE, conditions, name, template};

/// Every warehouse choice: a database of each tier (serverless with each free offer choice), a
/// pool created or named, and the smoke test without a warehouse.
fn warehouses() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for tier in ["Basic", "S0"] {
        out.push((
            tier.to_owned(),
            sql_database(json!({"sqlDatabaseTier": tier})),
        ));
    }
    for offer in ["AutoPause", "BillOverUsage", "None"] {
        out.push((
            format!("Serverless-{offer}"),
            sql_database(json!({"sqlDatabaseTier": "Serverless", "sqlDatabaseFreeOffer": offer})),
        ));
    }
    out.push((
        "pool-created".into(),
        json!({"warehouseKind": "synapsePool", "deploySynapse": true, "sqlAdminObjectId": ADMIN}),
    ));
    out.push((
        "pool-existing".into(),
        json!({"warehouseKind": "synapsePool", "existingSynapseServer": "mine.sql.azuresynapse.net", "existingSynapseDatabase": "dw"}),
    ));
    out.push(("smoke-test".into(), json!({"warehouse": SMOKE_TEST})));
    out
}

/// Every warehouse choice with every Event Hubs SKU, named `<warehouse>-<sku>`.
fn combinations() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (warehouse, parameters) in warehouses() {
        for sku in ["Basic", "Standard", "Premium"] {
            out.push((
                format!("{warehouse}-{sku}"),
                with(parameters.clone(), json!({"eventHubsSku": sku})),
            ));
        }
    }
    out
}

/// The template's parameters' defaults with `parameters` on top, as the settings the handler
/// reads.
fn config_of(settings: &std::collections::HashMap<String, String>) -> Config {
    Config::from_lookup(Mode::Serve, |key| settings.get(key).cloned()).unwrap()
}

#[test]
fn the_learner_profile_is_what_the_defaults_deploy() {
    let t = template();
    // Only the administrator: nobody's object id can be a default.
    let learner = json!({"sqlAdminObjectId": ADMIN});
    let made = created(learner.clone());
    let (deployment, _) = deployment(&t, learner.clone()).unwrap();
    let database = conditional(&t, SQL_DATABASE, "sqlDatabaseName");
    assert_eq!(
        deployment.value(&database["sku"]).unwrap(),
        json!({"name": "Basic", "tier": "Basic", "capacity": 5}),
        "DTU Basic: a flat rate that runs all month"
    );
    let namespace = super::one(&t, NAMESPACE);
    assert_eq!(
        deployment.value(&namespace["sku"]).unwrap(),
        json!({"name": "Basic", "tier": "Basic", "capacity": 1})
    );
    assert!(
        !made.iter().any(|(kind, _)| kind == CONSUMER_GROUP),
        "Basic reads through $Default: {made:?}"
    );
    assert!(
        made.iter()
            .all(|(kind, _)| !kind.starts_with("Microsoft.Synapse/")),
        "{made:?}"
    );

    let settings = deploy(learner).unwrap();
    assert_eq!(settings["WAREHOUSE"], "sql", "never a file on an instance");
    assert_eq!(settings["EVENT_HUB_CONSUMER_GROUP"], "$Default");
    assert_eq!(settings["SQL_AUTO_PAUSE_DELAY"], "", "Basic never pauses");
    assert_eq!(settings["FETCH_SCHEDULE"], "0 0 * * * *");
    assert_eq!(settings["COINCAP_LIMIT"], "10");
    assert_eq!(settings["COINCAP_MONTHLY_CREDITS"], "2500");

    // Its CoinCap credits fit the free plan, as the handler reads the settings it writes.
    let config = config_of(&settings);
    let calls = Schedule::ncrontab(&config.fetch_schedule)
        .unwrap()
        .month(MONTH_DAYS)
        .calls;
    let estimate = Estimate::of(&config.coincap, calls, Measured::Usual);
    assert_eq!(estimate.credits_a_month(), 1488);
    assert!(estimate.fits(), "{estimate}");
}

#[test]
fn each_database_tier_runs_all_month_or_pauses_after_its_delay() {
    let t = template();
    let database = conditional(&t, SQL_DATABASE, "sqlDatabaseName");
    assert_eq!(database["apiVersion"], SQL_API);
    let tier = &t["parameters"]["sqlDatabaseTier"];
    assert_eq!(tier["defaultValue"], "Basic");
    assert_eq!(tier["allowedValues"], json!(["Basic", "S0", "Serverless"]));
    let delay = &t["parameters"]["sqlDatabaseAutoPauseDelay"];
    assert_eq!(delay["defaultValue"], 15);
    assert_eq!(
        delay["minValue"], 15,
        "serverless General Purpose pauses after 15 minutes at the least"
    );

    for (tier, sku, size, pauses) in [
        (
            "Basic",
            json!({"name": "Basic", "tier": "Basic", "capacity": 5}),
            2u64 << 30,
            false,
        ),
        (
            "S0",
            json!({"name": "S0", "tier": "Standard", "capacity": 10}),
            250u64 << 30,
            false,
        ),
        (
            "Serverless",
            json!({"name": "GP_S_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 2}),
            32u64 << 30,
            true,
        ),
    ] {
        let parameters = sql_database(json!({"sqlDatabaseTier": tier}));
        let (deployment, _) = deployment(&t, parameters.clone()).unwrap();
        assert_eq!(deployment.value(&database["sku"]).unwrap(), sku, "{tier}");
        let properties = deployment.value(&database["properties"]).unwrap();
        assert_eq!(
            properties["maxSizeBytes"], size,
            "{tier}: its included size"
        );
        assert_eq!(properties["requestedBackupStorageRedundancy"], "Local");
        assert_eq!(properties.get("autoPauseDelay").is_some(), pauses, "{tier}");
        assert_eq!(
            properties.get("useFreeLimit").is_some(),
            pauses,
            "{tier}: the free offer is serverless"
        );
        let settings = deploy(parameters).unwrap();
        assert_eq!(
            settings["SQL_AUTO_PAUSE_DELAY"],
            if pauses { "15m" } else { "" },
            "{tier}: check judges the schedule against the delay"
        );
    }

    let offer = &t["parameters"]["sqlDatabaseFreeOffer"];
    assert_eq!(offer["defaultValue"], "AutoPause");
    for (choice, free, behaviour) in [
        ("AutoPause", true, Some("AutoPause")),
        ("BillOverUsage", true, Some("BillOverUsage")),
        ("None", false, None),
    ] {
        let parameters = sql_database(json!({
            "sqlDatabaseTier": "Serverless",
            "sqlDatabaseFreeOffer": choice,
            "sqlDatabaseAutoPauseDelay": 60
        }));
        let (deployment, _) = deployment(&t, parameters).unwrap();
        let properties = deployment.value(&database["properties"]).unwrap();
        assert_eq!(properties["useFreeLimit"], free, "{choice}");
        assert_eq!(
            properties.get("freeLimitExhaustionBehavior"),
            behaviour.map(|b| json!(b)).as_ref(),
            "{choice}: only sent with the free offer"
        );
        assert_eq!(properties["minCapacity"], 0.5);
        assert_eq!(properties["autoPauseDelay"], 60, "the parameter's value");
    }
}

#[test]
fn every_combination_of_warehouse_tier_and_event_hubs_sku_deploys_through_the_evaluator() {
    let t = template();
    let combinations = combinations();
    assert_eq!(combinations.len(), 8 * 3);
    for (label, parameters) in combinations {
        let settings = deploy(parameters.clone()).unwrap_or_else(|e| panic!("{label}: {e}"));
        let basic = parameters["eventHubsSku"] == "Basic";
        assert_eq!(
            settings["EVENT_HUB_CONSUMER_GROUP"],
            if basic { "$Default" } else { "coincap-sink" },
            "{label}"
        );
        let smoke = label.starts_with("smoke-test");
        assert_eq!(
            settings["WAREHOUSE"].starts_with("sqlite:"),
            smoke,
            "{label}: a file only when the smoke test says so"
        );
        assert_eq!(settings["SQL_SERVER"].is_empty(), smoke, "{label}");
        let made = created(parameters.clone());
        assert_eq!(
            made.iter().any(|(kind, _)| kind == CONSUMER_GROUP),
            !basic,
            "{label}"
        );
        assert_eq!(
            creates(&made, SQL_DATABASE, ""),
            label.starts_with("Basic")
                || label.starts_with("S0")
                || label.starts_with("Serverless"),
            "{label}"
        );
        for resource in evaluated_resources(&t, parameters) {
            assert!(
                !resource.to_string().contains("[parameters(")
                    && !resource.to_string().contains("[variables("),
                "{label}: every expression is evaluated: {resource}"
            );
        }
    }
}

/// The resources one set of parameters deploys, every expression evaluated: what ARM sends to
/// each resource provider (conditions decided, `comments` dropped).
fn evaluated_resources(t: &Value, parameters: Value) -> Vec<Value> {
    let made: Vec<(String, String)> = conditions(t, parameters.clone())
        .unwrap()
        .into_iter()
        .filter(|(_, _, made)| *made)
        .map(|(kind, name, _)| (kind, name))
        .collect();
    let (deployment, _) = deployment(t, parameters).unwrap();
    let mut out = Vec::new();
    for r in t["resources"].as_array().unwrap() {
        let kind = r["type"].as_str().unwrap();
        if r.get("condition").is_some() && !made.iter().any(|(k, n)| k == kind && n == name(r)) {
            continue;
        }
        let mut resource = Map::new();
        for (key, value) in r.as_object().unwrap() {
            if ["condition", "comments"].contains(&key.as_str()) {
                continue;
            }
            let value = deployment
                .value(value)
                .unwrap_or_else(|e| panic!("{}: {key}: {e}", name(r)));
            resource.insert(key.clone(), value);
        }
        out.push(Value::Object(resource));
    }
    out
}

/// Writes, for the offline schema check, one file per combination (the parameters given and the
/// resources evaluated) into the directory `COINCAP_TEMPLATE_COMBINATIONS` names.
#[test]
#[ignore = "writes files for the offline check against Azure's schemas (docs/deploy.md); needs COINCAP_TEMPLATE_COMBINATIONS"]
fn write_the_evaluated_resources_of_every_combination() {
    let dir = std::env::var("COINCAP_TEMPLATE_COMBINATIONS")
        .expect("COINCAP_TEMPLATE_COMBINATIONS names the directory to write to");
    let t = template();
    for (label, parameters) in combinations() {
        let evaluated = json!({
            "given": parameters.clone(),
            "resources": evaluated_resources(&t, parameters),
        });
        let path = std::path::Path::new(&dir).join(format!("{label}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&evaluated).unwrap()).unwrap();
    }
}
