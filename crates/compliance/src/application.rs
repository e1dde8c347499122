//! Use cases: the dry run and the account and rule endpoints, and the three event handlers.
//! A handler's effects, its inbox row and its outbox rows are written in one transaction that
//! the caller owns (`storage::Transactional`, which may commit a batch of events at once and
//! wakes the relay after the commit). Nothing is published any other way.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ::storage::{inbox, outbox, Db, Tx};
use chrono::{DateTime, Utc};
use contracts::compliance::{ContratoAprobado, ContratoRechazado};
use contracts::contratos::ContratoCreado;
use contracts::partners::PartnerCreado;
use contracts::sagas::RevisionAprobada;
use kernel::{Envelope, EnvelopeContext, IntegrationEvent};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{
    evaluar, CambiosReglas, ContratoPropuesto, CuentaFinanciera, Evaluacion, MetodoPago, Moneda,
    PartnerConocido, Periodo, ReglasCompliance, ReglasInvalidas, Veredicto, Vigencia,
};
use crate::storage::{self as repo, CuentaFilter, RepoError, TotalCuentas, TotalEvaluaciones};

/// The `source` of every envelope this service writes, and its consumer group.
pub const SERVICE: &str = "compliance";

/// The currency of an account opened by a review whose contract compliance never saw.
const MONEDA_DE_RESPALDO: &str = "USD";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the partner has no financial account")]
    CuentaNoEncontrada,
    /// The contract's partner has no `PartnerCreado` here yet and the grace period is not over:
    /// the message is retried, since cross-topic order is not guaranteed.
    #[error("partner {partner_id} is not known yet (contract {age_ms} ms old); waiting for its PartnerCreado")]
    PartnerAunDesconocido { partner_id: Uuid, age_ms: i64 },
    /// A batch's waiting writes met rows a concurrent writer put first: retried one by one.
    #[error("a concurrent write conflicted; retry")]
    Contention,
    #[error(transparent)]
    ReglasInvalidas(#[from] ReglasInvalidas),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::Repo(RepoError::Sqlx(error))
    }
}

impl From<::storage::StorageError> for AppError {
    fn from(error: ::storage::StorageError) -> Self {
        AppError::Repo(error.into())
    }
}

/// What a `ContratoCreado` led to (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Aprobado,
    /// `ContratoRechazado` was published with this `validacion_fallida`.
    Rechazado(&'static str),
    /// The contract was decided by an earlier delivery (another event id): nothing published.
    YaDecidido,
    /// The inbox had this event id: nothing was done.
    Duplicado,
}

/// Totals of a financial report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Informe {
    pub periodo: Periodo,
    pub evaluaciones: Vec<TotalEvaluaciones>,
    pub cuentas: Vec<TotalCuentas>,
}

/// The compliance service's use cases.
pub struct Service {
    db: Db,
    wake: Arc<Notify>,
    unknown_partner_grace: Duration,
}

fn append<E: IntegrationEvent>(event: &E, context: &EnvelopeContext) -> (&'static str, Envelope) {
    (E::TOPIC, Envelope::wrap(SERVICE, event, context.clone()))
}

impl Service {
    pub fn new(db: Db, wake: Arc<Notify>, unknown_partner_grace: Duration) -> Self {
        Self {
            db,
            wake,
            unknown_partner_grace,
        }
    }

    async fn commit(&self, tx: Tx) -> Result<(), AppError> {
        outbox::commit_and_wake(tx, &self.wake).await?;
        Ok(())
    }

    /// Runs the rules on a proposed contract against the current configuration, changing
    /// nothing. An unknown partner fails rule 3 at once (there is no message to retry).
    pub async fn dry_run(&self, contrato: &ContratoPropuesto) -> Result<Veredicto, AppError> {
        let reglas = repo::load_rules(&self.db).await?;
        let partner = repo::find_known_partner(&self.db, contrato.partner_id).await?;
        Ok(evaluar(contrato, partner.as_ref(), &reglas))
    }

    /// Opens a partner's account by hand. Returns the account and whether it was created now;
    /// an existing account is returned unchanged, never duplicated.
    pub async fn register_account(
        &self,
        partner_id: Uuid,
        moneda: Moneda,
        metodo_pago: MetodoPago,
    ) -> Result<(CuentaFinanciera, bool), AppError> {
        let cuenta = CuentaFinanciera::abrir(partner_id, moneda, metodo_pago, kernel::now());
        let mut tx = self.db.begin().await?;
        if repo::insert_account(&mut tx, &cuenta).await? {
            self.commit(tx).await?;
            return Ok((cuenta, true));
        }
        let existing = repo::find_account_tx(&mut tx, partner_id)
            .await?
            .ok_or(AppError::CuentaNoEncontrada)?;
        drop(tx);
        Ok((existing, false))
    }

    pub async fn get_account(&self, partner_id: Uuid) -> Result<CuentaFinanciera, AppError> {
        repo::find_account(&self.db, partner_id)
            .await?
            .ok_or(AppError::CuentaNoEncontrada)
    }

    pub async fn list_accounts(
        &self,
        filter: &CuentaFilter,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<(Vec<CuentaFinanciera>, i64), AppError> {
        Ok(repo::list_accounts(&self.db, filter, limit, after).await?)
    }

    /// The current configuration and when it last changed.
    pub async fn rules(&self) -> Result<(ReglasCompliance, Option<DateTime<Utc>>), AppError> {
        let reglas = repo::load_rules(&self.db).await?;
        let at = repo::rules_updated_at(&self.db).await?;
        Ok((reglas, at))
    }

    /// Applies `cambios` to the configuration in one transaction; the next evaluation uses it.
    pub async fn update_rules(
        &self,
        cambios: CambiosReglas,
    ) -> Result<(ReglasCompliance, DateTime<Utc>), AppError> {
        let mut tx = self.db.begin().await?;
        let actuales = repo::load_rules_tx(&mut tx).await?;
        let nuevas = actuales.con_cambios(cambios)?;
        let at = kernel::now();
        repo::save_rules(&mut tx, &nuevas, at).await?;
        self.commit(tx).await?;
        Ok((nuevas, at))
    }

    pub async fn report(&self, periodo: Periodo) -> Result<Informe, AppError> {
        Ok(Informe {
            periodo,
            evaluaciones: repo::evaluation_totals(&self.db, &periodo).await?,
            cuentas: repo::account_totals(&self.db, &periodo).await?,
        })
    }

    /// Handles `PartnerCreado` inside `tx` (the caller commits): the partner becomes known to
    /// rule 3. Returns whether this delivery was the first.
    pub async fn record_partner_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        event: PartnerCreado,
    ) -> Result<bool, AppError> {
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(false);
        }
        let partner = PartnerConocido {
            partner_id: event.partner_id,
            email: event.email,
            nombre: event.nombre,
            tipo: event.tipo,
        };
        let prefetched = tx.scratch::<Prefetched>();
        if prefetched.partners_batch {
            // The batch's partners are recorded together when it ends.
            prefetched.known.push(partner);
            return Ok(true);
        }
        self.flush(tx).await?;
        repo::insert_known_partner(tx, &partner, kernel::now()).await?;
        Ok(true)
    }

    /// Before a batch of `PartnerCreado` events is applied in `tx`: their partners wait to be
    /// recorded together when the batch ends (see [`Prefetched`]).
    pub fn prepare_partners(&self, tx: &mut Tx) {
        tx.scratch::<Prefetched>().partners_batch = true;
    }

    /// Before a batch of `ContratoCreado` events is applied in `tx`: reads, in two statements,
    /// the rules and which of its contracts were decided, which of its partners compliance
    /// knows and which have an account, so that deciding each contract needs no statement of
    /// its own until the batch ends (on SQLite each one is a trip to the connection's thread
    /// with the database's writer held).
    pub async fn prepare_evaluations(
        &self,
        tx: &mut Tx,
        events: &[ContratoCreado],
    ) -> Result<(), AppError> {
        if events.is_empty() {
            return Ok(());
        }
        let contrato_ids: Vec<Uuid> = events.iter().map(|event| event.contrato_id).collect();
        let partner_ids: Vec<Uuid> = events.iter().map(|event| event.partner_id).collect();
        let reglas = repo::load_rules_tx(tx).await?;
        let conocidos = repo::conocidos_tx(tx, &contrato_ids, &partner_ids).await?;
        let prefetched = tx.scratch::<Prefetched>();
        prefetched.contratos = contrato_ids.into_iter().collect();
        prefetched.reglas = Some(reglas);
        prefetched.conocidos = conocidos;
        Ok(())
    }

    /// After a batch's events were applied in `tx`, before it commits: writes what they left
    /// waiting (see [`Prefetched`]).
    pub async fn finish_batch(&self, tx: &mut Tx) -> Result<(), AppError> {
        self.flush(tx).await
    }

    /// Writes what waits in `tx`: the partners, in one query on SQLite, then the decisions and
    /// accounts, in another.
    async fn flush(&self, tx: &mut Tx) -> Result<(), AppError> {
        let prefetched = tx.scratch::<Prefetched>();
        let known = std::mem::take(&mut prefetched.known);
        let evaluaciones = std::mem::take(&mut prefetched.evaluaciones);
        let cuentas = std::mem::take(&mut prefetched.cuentas);
        if !known.is_empty() {
            repo::insert_known_partners(tx, &known, kernel::now()).await?;
        }
        if (evaluaciones.len() + cuentas.len()) > 0
            && !repo::insert_decisions(tx, &evaluaciones, &cuentas).await?
        {
            // A concurrent delivery (another replica, PostgreSQL) decided a contract or
            // opened an account first: the batch's events are retried one by one, and that
            // one sees it.
            return Err(AppError::Contention);
        }
        Ok(())
    }

    /// Handles `ContratoCreado` inside `tx` (the caller commits): runs the rules and records
    /// exactly one decision per contract with its outcome event (and, on approval, the
    /// partner's account). An unknown partner is waited for during the grace period (an error:
    /// the caller rolls `tx` back and retries); a database failure is an error to retry, never
    /// a rejection.
    pub async fn evaluate_contract_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        event: ContratoCreado,
    ) -> Result<Decision, AppError> {
        let context = EnvelopeContext::caused_by(envelope);
        let contrato = ContratoPropuesto {
            partner_id: event.partner_id,
            monto: event.monto,
            moneda: event.moneda.clone(),
            estado: event.estado.clone(),
            vigencia: Vigencia::leer(&event.fecha_inicio, event.fecha_fin.as_deref()),
        };
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(Decision::Duplicado);
        }
        let held = Prefetched::antecedentes(tx, event.contrato_id, event.partner_id);
        let batched = held.is_some();
        let antecedentes = match held {
            Some(antecedentes) => antecedentes,
            None => {
                self.flush(tx).await?;
                repo::antecedentes_tx(tx, event.contrato_id, event.partner_id).await?
            }
        };
        if antecedentes.decidido {
            return Ok(Decision::YaDecidido);
        }
        let veredicto = evaluar(
            &contrato,
            antecedentes.partner.as_ref(),
            &antecedentes.reglas,
        );
        let now = kernel::now();
        if veredicto.espera_al_partner() {
            let age = now - envelope.time;
            let grace = chrono::Duration::from_std(self.unknown_partner_grace)
                .unwrap_or(chrono::Duration::MAX);
            if age < grace {
                // The error rolls `tx` back, inbox row included, so the retry is a first
                // delivery.
                return Err(AppError::PartnerAunDesconocido {
                    partner_id: event.partner_id,
                    age_ms: age.num_milliseconds(),
                });
            }
        }
        let evaluacion = Evaluacion {
            contrato_id: event.contrato_id,
            partner_id: event.partner_id,
            onboarding_id: event.onboarding_id,
            monto: event.monto,
            moneda: event.moneda.trim().to_uppercase(),
            veredicto: veredicto.clone(),
            evaluado_en: now,
        };
        if batched {
            // Written with the rest of the batch's decisions when it ends.
            let prefetched = tx.scratch::<Prefetched>();
            prefetched.conocidos.decididos.insert(event.contrato_id);
            prefetched.evaluaciones.push(evaluacion);
        } else if !repo::insert_evaluation(tx, &evaluacion).await? {
            // A concurrent delivery of another event for this contract decided first.
            return Ok(Decision::YaDecidido);
        }
        let decision = match &veredicto.rechazo {
            None => {
                // Rule 2 passed, so the currency is a valid allowed code.
                let moneda = Moneda::parse(&event.moneda).map_err(|error| {
                    AppError::Repo(RepoError::Corrupt(format!(
                        "approved contract {} has currency {}: {error}",
                        event.contrato_id, event.moneda
                    )))
                })?;
                let cuenta =
                    CuentaFinanciera::abrir(event.partner_id, moneda, MetodoPago::default(), now);
                if batched {
                    // A partner with an account keeps it, as the insert would leave it.
                    let prefetched = tx.scratch::<Prefetched>();
                    if prefetched.conocidos.con_cuenta.insert(event.partner_id) {
                        prefetched.cuentas.push(cuenta);
                    }
                } else {
                    repo::insert_account(tx, &cuenta).await?;
                }
                let (topic, outcome) = append(
                    &ContratoAprobado {
                        contrato_id: event.contrato_id,
                        partner_id: event.partner_id,
                        onboarding_id: event.onboarding_id,
                        validaciones_pasadas: veredicto.nombres_pasadas(),
                    },
                    &context,
                );
                outbox::append(tx, topic, &outcome);
                Decision::Aprobado
            }
            Some(rechazo) => {
                let (topic, outcome) = append(
                    &ContratoRechazado {
                        contrato_id: event.contrato_id,
                        partner_id: event.partner_id,
                        onboarding_id: event.onboarding_id,
                        causa_rechazo: rechazo.causa.clone(),
                        validacion_fallida: rechazo.regla.codigo_fallo().to_owned(),
                    },
                    &context,
                );
                outbox::append(tx, topic, &outcome);
                Decision::Rechazado(rechazo.regla.codigo_fallo())
            }
        };
        Ok(decision)
    }

    /// Handles `RevisionAprobada` inside `tx` (the caller commits): the operator overrode the
    /// rejection, so the partner gets its account (in the reviewed contract's currency), once.
    /// No rules run. Returns whether an account was opened now.
    pub async fn open_account_after_review_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        event: RevisionAprobada,
    ) -> Result<bool, AppError> {
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(false);
        }
        self.flush(tx).await?;
        let evaluada = repo::find_evaluation_tx(tx, event.contrato_id).await?;
        let moneda = evaluada
            .as_ref()
            .and_then(|evaluacion| Moneda::parse(&evaluacion.moneda).ok());
        let moneda = match moneda {
            Some(moneda) => moneda,
            None => {
                tracing::warn!(contrato_id = %event.contrato_id, "reviewed contract without a readable evaluation; opening the account in {MONEDA_DE_RESPALDO}");
                Moneda::parse(MONEDA_DE_RESPALDO)
                    .map_err(|error| AppError::Repo(RepoError::Corrupt(error.to_string())))?
            }
        };
        let cuenta = CuentaFinanciera::abrir(
            event.partner_id,
            moneda,
            MetodoPago::default(),
            kernel::now(),
        );
        let opened = repo::insert_account(tx, &cuenta).await?;
        Ok(opened)
    }
}

/// What a batch of events read up front and what it wrote since, for one transaction.
///
/// A batch of `PartnerCreado` ([`Service::prepare_partners`]) leaves its partners in `known`.
/// A batch of `ContratoCreado` ([`Service::prepare_evaluations`]) holds its contracts, the
/// rules and what `repo::conocidos_tx` read, kept up to date as it decides; its decisions and
/// accounts wait in `evaluaciones` and `cuentas`. Whatever waits is written when the batch
/// ends, or before anything else reads or writes those tables, so a batch's rows travel in
/// one query instead of one statement or three per event.
#[derive(Default)]
struct Prefetched {
    partners_batch: bool,
    known: Vec<PartnerConocido>,
    contratos: HashSet<Uuid>,
    reglas: Option<ReglasCompliance>,
    conocidos: repo::Conocidos,
    evaluaciones: Vec<Evaluacion>,
    cuentas: Vec<CuentaFinanciera>,
}

impl Prefetched {
    /// What `repo::antecedentes_tx` would read for `contrato_id`, if the batch holds it.
    fn antecedentes(
        tx: &mut Tx,
        contrato_id: Uuid,
        partner_id: Uuid,
    ) -> Option<repo::Antecedentes> {
        let prefetched = tx.scratch::<Prefetched>();
        if !prefetched.contratos.contains(&contrato_id) {
            return None;
        }
        let conocidos = &prefetched.conocidos;
        Some(repo::Antecedentes {
            decidido: conocidos.decididos.contains(&contrato_id),
            reglas: prefetched.reglas.clone()?,
            partner: conocidos.partners.get(&partner_id).cloned(),
        })
    }
}
