//! `list`: `GET /api/v1/partners` latency over a large integraciones database on PostgreSQL.
//! Seeds the partner table with one `INSERT … SELECT … FROM generate_series` (time-ordered ids,
//! as the service's v7 ids are), serves integraciones' router on a free port, and times a few
//! hundred requests per query shape: no filter, by kind, by state and KYC state, a name search,
//! and a page deep in the keyset after walking the cursor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use embedded_bus::EmbeddedBus;
use integraciones::Integraciones;
use storage::Db;

use crate::report::{millis, Figure, Percentiles};
use crate::scratch::{BackendChoice, ScratchDb};

#[derive(Debug, Clone)]
pub struct ListOptions {
    pub partners: usize,
    /// Timed requests per query shape (after a few untimed ones).
    pub requests: usize,
    /// Pages walked through `next_cursor` before the deep page is timed.
    pub deep_pages: usize,
    pub postgres_server: String,
    /// Leave the database in place (for `psql` and `EXPLAIN ANALYZE`) instead of dropping it.
    pub keep_database: bool,
    /// Print each query shape's plan (`EXPLAIN ANALYZE` of the service's list query).
    pub explain: bool,
}

/// Untimed requests before each timed series: PostgreSQL plans a prepared statement five times
/// before it may settle on a generic plan, and every series should be measured in that state.
const WARM_UP: usize = 10;

/// The target for a filtered page over 500,000 partners.
const TARGET_P99_MS: f64 = 20.0;

/// The query shapes timed, as `(name, query string)`.
const SHAPES: [(&str, &str); 6] = [
    ("first_page", ""),
    ("tipo", "tipo=INFLUENCER"),
    ("estado_kyc", "estado=ACTIVO&estado_kyc=APROBADO"),
    ("q_common", "q=garc"),
    ("q_rare", "q=partner123456"),
    ("tipo_estado", "tipo=CORPORATIVO&estado=SUSPENDIDO"),
];

pub async fn run(options: &ListOptions) -> anyhow::Result<Vec<Figure>> {
    ensure!(
        options.partners > 0 && options.requests > 0,
        "--partners and --requests must be positive"
    );
    let scratch = ScratchDb::create(BackendChoice::Postgres, &options.postgres_server).await?;
    let measured = measure(options, &scratch).await;
    if let Some(kept) = scratch.remove(options.keep_database).await? {
        eprintln!(
            "kept the database {kept}; drop it with: psql -c 'DROP DATABASE \"{kept}\" WITH (FORCE)'"
        );
    }
    measured
}

async fn measure(options: &ListOptions, scratch: &ScratchDb) -> anyhow::Result<Vec<Figure>> {
    let bus = EmbeddedBus::open(&scratch.dir.path().join("bus.db"))
        .await
        .context("opening the embedded bus")?;
    let service = Integraciones::start(scratch.db.clone(), Arc::new(bus.clone()))
        .await
        .context("starting integraciones")?;

    let started = Instant::now();
    seed(&scratch.db, options.partners).await?;
    let seed_elapsed = started.elapsed();
    eprintln!(
        "seeded {} partners in {:.1} s (with VACUUM ANALYZE)",
        options.partners,
        seed_elapsed.as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/api/v1/partners", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::serve(listener, service.router(), async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let figure = |shape: &str| {
        Figure::new("list.partners")
            .label("partners", options.partners)
            .label("shape", shape)
    };
    let mut figures = vec![Figure::new("list.seed")
        .label("partners", options.partners)
        .value("seconds", seed_elapsed.as_secs_f64())];
    let mut slow = Vec::new();
    let mut explained: Vec<(String, String)> = SHAPES
        .iter()
        .map(|(shape, query)| ((*shape).to_owned(), (*query).to_owned()))
        .collect();
    let timed = async {
        for (shape, query) in SHAPES {
            let (samples, page) = time_requests(&client, &base, query, options.requests).await?;
            let latencies = Percentiles::of(&samples);
            if latencies.p99_ms > TARGET_P99_MS {
                slow.push((shape.to_owned(), query.to_owned()));
            }
            figures.push(
                figure(shape)
                    .value("total", page.total as f64)
                    .value("items", page.items as f64)
                    .latencies(&samples),
            );
        }
        let cursor = walk(&client, &base, options.deep_pages).await?;
        let query = format!("cursor={cursor}");
        explained.push(("deep_page".to_owned(), query.clone()));
        let (samples, page) = time_requests(&client, &base, &query, options.requests).await?;
        if Percentiles::of(&samples).p99_ms > TARGET_P99_MS {
            slow.push(("deep_page".to_owned(), query.clone()));
        }
        figures.push(
            figure("deep_page")
                .label("after_pages", options.deep_pages)
                .value("total", page.total as f64)
                .value("items", page.items as f64)
                .latencies(&samples),
        );
        anyhow::Ok(())
    };
    let result = timed.await;
    let _ = stop.send(());
    server.await.context("the server task")??;
    result?;

    if options.explain {
        let Db::Postgres(pool) = &scratch.db else {
            bail!("the list benchmark runs on PostgreSQL only");
        };
        for (shape, query) in &explained {
            for plan in crate::explain::list_plans(pool, query).await? {
                eprintln!("--- {shape} ({query}) ---\n{plan}");
            }
        }
    } else if !slow.is_empty() {
        eprintln!(
            "above {TARGET_P99_MS} ms p99: {}; rerun with --explain for their plans",
            slow.iter()
                .map(|(shape, _)| shape.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    bus.close().await;
    Ok(figures)
}

/// What a page said, to check that the shapes return what they should.
#[derive(Debug, Clone, Copy)]
struct PageSummary {
    total: i64,
    items: usize,
}

/// `WARM_UP` untimed then `requests` timed `GET base?query`, one at a time.
async fn time_requests(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    requests: usize,
) -> anyhow::Result<(Vec<Duration>, PageSummary)> {
    let url = format!("{base}?{query}");
    let mut samples = Vec::with_capacity(requests);
    let mut last = None;
    for index in 0..WARM_UP + requests {
        let started = Instant::now();
        let response = client.get(&url).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        let elapsed = started.elapsed();
        ensure!(
            status.is_success(),
            "GET {url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        if index >= WARM_UP {
            samples.push(elapsed);
        }
        last = Some(body);
    }
    let page: serde_json::Value = serde_json::from_slice(&last.unwrap_or_default())?;
    let summary = PageSummary {
        total: page["total"].as_i64().unwrap_or(-1),
        items: page["items"].as_array().map_or(0, Vec::len),
    };
    Ok((samples, summary))
}

/// Follows `next_cursor` from the first unfiltered page for `pages` pages; returns the cursor of
/// the page after them.
async fn walk(client: &reqwest::Client, base: &str, pages: usize) -> anyhow::Result<String> {
    let mut cursor: Option<String> = None;
    for _ in 0..pages {
        let url = match &cursor {
            None => base.to_owned(),
            Some(cursor) => format!("{base}?cursor={cursor}"),
        };
        let page: serde_json::Value = client.get(&url).send().await?.json().await?;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            bail!("the list ended before page {pages}");
        }
    }
    cursor.context("walk at least one page")
}

/// Inserts `count` partners in one statement, then vacuums and analyzes the table as a live
/// table would have been. Ids are v7-like: the creation millisecond in the first 48 bits, so
/// `ORDER BY partner_id` is creation order as with the service's `Uuid::now_v7()`. Kinds,
/// states and KYC states vary independently; names repeat over 17 × 19 combinations; e-mails
/// are unique.
async fn seed(db: &Db, count: usize) -> anyhow::Result<()> {
    let Db::Postgres(pool) = db else {
        bail!("the list benchmark runs on PostgreSQL only");
    };
    let first_ms = chrono::Utc::now().timestamp_millis() - count as i64 - 1;
    sqlx::query(SEED)
        .bind(first_ms)
        .bind(i64::try_from(count)?)
        .execute(pool)
        .await
        .context("seeding partners")?;
    // The running service folds the counts' appended changes every second; a bench without
    // it folds them once, as the service would have.
    integraciones::storage::fold_counts(db)
        .await
        .context("folding the partner counts")?;
    sqlx::raw_sql("VACUUM ANALYZE partner")
        .execute(pool)
        .await
        .context("vacuuming partner")?;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM partner")
        .fetch_one(pool)
        .await?;
    ensure!(rows == count as i64, "seeded {rows} partners, not {count}");
    eprintln!(
        "partner table: {:.0} ms to count {rows} rows",
        millis(count_time(pool).await?)
    );
    Ok(())
}

async fn count_time(pool: &sqlx::PgPool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM partner")
        .fetch_one(pool)
        .await?;
    Ok(started.elapsed())
}

/// Columns of integraciones' `partner` table (migration 0001). `$1` is the first creation
/// millisecond, `$2` the number of partners.
const SEED: &str = "
INSERT INTO partner (partner_id, nombre, nombre_busqueda, email, email_normalizado, telefono,
    direccion, tipo, estado, estado_kyc, documentos_kyc, onboarding_id, fecha_creacion,
    fecha_actualizacion)
SELECT
    overlay(overlay(md5(i::text) PLACING lpad(to_hex($1 + i), 12, '0') FROM 1 FOR 12)
        PLACING '7' FROM 13 FOR 1)::uuid,
    n.nombre,
    lower(n.nombre),
    'partner' || i || '@example.com',
    'partner' || i || '@example.com',
    '+57 300 ' || lpad((i % 10000000)::text, 7, '0'),
    CASE WHEN i % 3 = 0 THEN 'Calle ' || (i % 200) || ' # ' || (i % 97) || '-' || (i % 53) || ', Bogotá' END,
    (ARRAY['AFILIADO', 'INFLUENCER', 'EMBAJADOR', 'CORPORATIVO'])[1 + i % 4],
    (ARRAY['ACTIVO', 'ACTIVO', 'ACTIVO', 'ACTIVO', 'ACTIVO', 'ACTIVO', 'ACTIVO',
           'INACTIVO', 'SUSPENDIDO', 'ELIMINADO'])[1 + (i / 4) % 10],
    (ARRAY['APROBADO', 'APROBADO', 'APROBADO', 'APROBADO', 'APROBADO', 'APROBADO',
           'PENDIENTE', 'PENDIENTE', 'RECHAZADO', 'REQUIERE_DOCUMENTOS'])[1 + (i / 40) % 10],
    NULL,
    NULL,
    to_timestamp(($1 + i) / 1000.0),
    to_timestamp(($1 + i) / 1000.0)
FROM generate_series(1::bigint, $2) AS i
CROSS JOIN LATERAL (SELECT
    (ARRAY['Ana', 'Luis', 'María', 'Carlos', 'Lucía', 'Jorge', 'Valentina', 'Andrés', 'Camila',
           'Diego', 'Sofía', 'Mateo', 'Isabella', 'Santiago', 'Daniela', 'Juan', 'Paula'])[1 + i % 17]
    || ' ' ||
    (ARRAY['García', 'Rodríguez', 'Martínez', 'López', 'González', 'Pérez', 'Sánchez', 'Ramírez',
           'Torres', 'Flores', 'Rivera', 'Gómez', 'Díaz', 'Reyes', 'Morales', 'Ortiz', 'Castro',
           'Vargas', 'Rojas'])[1 + (i / 17) % 19] AS nombre) AS n";
