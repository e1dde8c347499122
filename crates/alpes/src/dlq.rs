//! `alpes dlq list|replay`: the operator's view of dead letters in embedded mode. It attaches to
//! the bus file beside a running platform rather than owning it, so it never takes over leases.

use anyhow::Context;

use crate::DlqAction;
use alpes::settings::Settings;

pub async fn run(action: DlqAction, settings: &Settings) -> anyhow::Result<()> {
    let path = settings.data_dir.join("bus.db");
    let bus = embedded_bus::EmbeddedBus::attach(&path)
        .await
        .with_context(|| format!("opening the bus at {}", path.display()))?;
    let result = match action {
        DlqAction::List { group: None } => {
            let counts = bus.dead_letter_counts().await?;
            if counts.is_empty() {
                println!("no dead letters");
            }
            for (group, count) in counts {
                println!("{group}\t{count}");
            }
            Ok(())
        }
        DlqAction::List { group: Some(group) } => {
            for envelope in bus.dead_letters(&group).await? {
                println!(
                    "{}\t{}\t{}\tattempts={}\t{}",
                    envelope.id,
                    envelope.event_type,
                    envelope.deadlettertopic.as_deref().unwrap_or("?"),
                    envelope.deadletterattempts.unwrap_or(0),
                    envelope.deadlettererror.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        DlqAction::Replay { group } => {
            let replayed = bus.replay_dead_letters(&group).await?;
            println!("replayed {replayed} dead letter(s) of {group}");
            Ok(())
        }
    };
    bus.close().await;
    result
}
