//! `list --explain`: the plans PostgreSQL runs for integraciones' partner list. The two
//! statements below mirror `integraciones::storage::list` (page and total); they are prepared
//! with the parameter types sqlx sends and executed a few times first, so the plan shown is the
//! one the service's pooled connections settle on (custom or generic). Diagnostics only.

use anyhow::{bail, Context};
use sqlx::Connection;

const LIST_WHERE: &str = "($1 IS NULL OR estado = $1)
    AND ($2 IS NULL OR tipo = $2)
    AND ($3 IS NULL OR estado_kyc = $3)
    AND ($4 IS NULL OR nombre_busqueda LIKE $4 ESCAPE '\\' OR email_normalizado LIKE $4 ESCAPE '\\')";

const PARTNER_COLUMNS: &str = "partner_id, nombre, email, telefono, direccion, tipo, estado, \
    estado_kyc, documentos_kyc, onboarding_id, fecha_creacion, fecha_actualizacion";

/// Executions before the one explained: PostgreSQL uses custom plans for the first five.
const PLANNED_RUNS: usize = 6;

/// `EXPLAIN (ANALYZE, BUFFERS)` of the page query and of the total for `query` (a list query
/// string such as `tipo=INFLUENCER&cursor=…`), limit 50.
pub async fn list_plans(pool: &sqlx::PgPool, query: &str) -> anyhow::Result<Vec<String>> {
    let mut estado = None;
    let mut tipo = None;
    let mut estado_kyc = None;
    let mut q = None;
    let mut cursor = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = Some(value.to_owned());
        match key {
            "estado" => estado = value,
            "tipo" => tipo = value,
            "estado_kyc" => estado_kyc = value,
            "q" => q = value.map(|q| format!("%{}%", q.to_lowercase())),
            "cursor" => cursor = value,
            other => bail!("cannot explain the query parameter {other:?}"),
        }
    }
    let filter = [&estado, &tipo, &estado_kyc, &q]
        .map(|value| literal(value.as_deref()))
        .join(", ");
    let page_sql = format!(
        "SELECT {PARTNER_COLUMNS} FROM partner WHERE {LIST_WHERE}
         AND ($5 IS NULL OR partner_id > $5) ORDER BY partner_id LIMIT $6"
    );
    // As integraciones counts: from the counts table unless the filter searches with `q`.
    let (count_sql, count_types, count_args) = if q.is_none() {
        (
            integraciones::storage::COUNT_FROM_CONTEO.to_owned(),
            "text, text, text",
            [&estado, &tipo, &estado_kyc]
                .map(|value| literal(value.as_deref()))
                .join(", "),
        )
    } else {
        (
            format!("SELECT COUNT(*) FROM partner WHERE {LIST_WHERE}"),
            "text, text, text, text",
            filter.clone(),
        )
    };
    let mut conn = pool.acquire().await?.detach();
    let plans = async {
        sqlx::raw_sql(&format!(
            "PREPARE bench_page (text, text, text, text, uuid, int8) AS {page_sql};
             PREPARE bench_count ({count_types}) AS {count_sql};"
        ))
        .execute(&mut conn)
        .await
        .context("preparing the list statements")?;
        let page_args = format!("{filter}, {}::uuid, 51", literal(cursor.as_deref()));
        let mut plans = Vec::new();
        for (name, args) in [("bench_page", page_args), ("bench_count", count_args)] {
            let mut plan = String::new();
            for _ in 0..PLANNED_RUNS {
                let lines: Vec<String> = sqlx::query_scalar(&format!(
                    "EXPLAIN (ANALYZE, BUFFERS) EXECUTE {name}({args})"
                ))
                .fetch_all(&mut conn)
                .await
                .with_context(|| format!("explaining {name}"))?;
                plan = lines.join("\n");
            }
            plans.push(format!("{name}:\n{plan}"));
        }
        anyhow::Ok(plans)
    }
    .await;
    conn.close().await.ok();
    plans
}

/// A SQL literal: `NULL` or a single-quoted string.
fn literal(value: Option<&str>) -> String {
    match value {
        None => "NULL".to_owned(),
        Some(value) => format!("'{}'", value.replace('\'', "''")),
    }
}
