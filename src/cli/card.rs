//! `varietycash card`: stored-value cards over a card system kept in one
//! directory (card-bridge's `CardSystem`: master keys, the LUS log, the
//! agency, the collection server, PSAM state files, card images), and
//! transfers between cards and soft cash with the issuer as the agency.
//!
//! A LUS has one payment agency. Until a transfer is made, it is the card
//! system's own agency (`load`, `unload` with a bank account as holder);
//! the first transfer binds the LUS to the issuer (the file
//! `DIR/issuer-agency` names the issuer's directory), after which value
//! enters and leaves the cards only through `from-purse` and `to-purse`,
//! and `clear` settles with the issuer. Clearing against one agency is what
//! keeps both sides even, so the two are never mixed.
//!
//! When the issuer serves (at the listen address of its `issuer.toml`, with
//! that directory's key), transfers, `clear` and `show` reach its card
//! agency through its gateway (`POST /admin/card/agency`, signed with the
//! directory's operator key; TLS pinned to its `tls-ca.pem`) and it keeps
//! serving; otherwise the issuer runs in this process over its directory.
//! Soft cash comes from and goes to a purse file: `from-purse` holds
//! the coins in the purse's journal (an entry whose context names the
//! transfer) until the load commits (spent) or is undone (released);
//! `to-purse` adds the coins bought with the unload, once per transfer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use actors::{CardAgency, IssuerCore};
use anyhow::{Context, bail};
use card_bridge::card::SmartCard;
use card_bridge::clearing::{ClearingReport, clear};
use card_bridge::crypto::Suite;
use card_bridge::flows::CardTerminal;
use card_bridge::system::CardSystem;
use card_bridge::transfer::{
    CardToCard, CardToSoft, SoftToCard, TransferError, TransferFault, TransferId, TransferJournal,
    TransferStep, Transfers,
};
use card_bridge::wire::PsamId;
use clap::{Args, Subcommand, ValueEnum};
use ledger::{Amount, BankAccount, CardId, Coin, LusId, Timestamp};
use purse::{
    Completion, Destination, JournalEntry, NewTransaction, Purse, Selection, Step, TxKind, TxRef,
};

use super::common::parse_account;
use super::issuer::IssuerFile;

/// Names the issuer's directory once the LUS's agency is the issuer.
const ISSUER_AGENCY_FILE: &str = "issuer-agency";
/// The journal of transfers, in the card system's directory.
const TRANSFER_JOURNAL_FILE: &str = "transfers.redb";
/// Starts the context of a purse journal entry made by a card transfer.
const PURSE_CONTEXT_LABEL: &[u8] = b"vc/card-transfer/";
/// Days a new card is valid unless told otherwise.
const CARD_LIFETIME_DAYS_DEFAULT: u64 = 4 * 365;
const SECS_PER_DAY: u64 = 24 * 3600;

/// Stored-value cards: issue, load, unload, pay, transfer, clear, show.
#[derive(Debug, Args)]
pub struct CardArgs {
    /// The card system's directory (created by `issue` on first use).
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    /// The load/unload server's number.
    #[arg(long, global = true, default_value_t = 1)]
    pub lus: u32,
    /// For tests: stop a transfer at this step, as a crash there would.
    #[arg(long, global = true, hide = true, value_enum)]
    pub stop_at: Option<StopAt>,
    #[command(subcommand)]
    pub command: CardCommand,
}

/// Where a transfer can be stopped (`--stop-at`, hidden; for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StopAt {
    /// The purse holds the coins for the transfer; nothing else happened.
    AfterReserve,
    /// The card began its leg and the journal recorded it.
    AfterJournal,
    /// The issuer guaranteed the card leg (or took the coins).
    AfterGuarantee,
    /// The card leg finished; no coins bought yet.
    BeforeCoins,
    /// Coins bought; the journal does not know yet.
    AfterCoins,
    /// The transfer finished; the purse is not told yet.
    BeforePurse,
}

impl StopAt {
    fn fault(self) -> Option<TransferFault> {
        match self {
            StopAt::AfterJournal => Some(TransferFault::AfterJournal),
            StopAt::AfterGuarantee => Some(TransferFault::AfterGuarantee),
            StopAt::BeforeCoins => Some(TransferFault::BeforeCoins),
            StopAt::AfterCoins => Some(TransferFault::AfterCoins),
            StopAt::AfterReserve | StopAt::BeforePurse => None,
        }
    }
}

/// Exit status of a run stopped by `--stop-at`.
const STOPPED_EXIT_CODE: i32 = 3;

/// Stops here if told to (`--stop-at`).
fn stop_if(stop_at: Option<StopAt>, here: StopAt, id: &TransferId) {
    if stop_at == Some(here) {
        crash(id, &anyhow::anyhow!("stopped at {here:?} (--stop-at)"));
    }
}

/// Ends the process at once, as a crash would: nothing after this point is
/// written (card images are written through, so they hold every write the
/// card made before it).
fn crash(id: &TransferId, why: &anyhow::Error) -> ! {
    eprintln!("varietycash: {}: {why:#}", retry_hint(id));
    std::process::exit(STOPPED_EXIT_CODE)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SuiteArg {
    /// Triple-DES, as deployed cards use.
    Tdes,
    /// AES-256.
    Aes256,
}

#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Personalise a new card (keys diversified from the system's masters).
    Issue {
        /// The card's id: 16 hex digits.
        #[arg(long, value_parser = parse_card)]
        card: CardId,
        /// Most the card may hold.
        #[arg(long, default_value = "500.00")]
        max: Amount,
        /// Days until the card expires.
        #[arg(long, default_value_t = CARD_LIFETIME_DAYS_DEFAULT)]
        days: u64,
        /// Cipher suite of a new card system (ignored once it exists).
        #[arg(long, value_enum, default_value = "tdes")]
        suite: SuiteArg,
    },
    /// Load value paid to the card system's own agency by a bank holder.
    Load {
        #[arg(long, value_parser = parse_card)]
        card: CardId,
        amount: Amount,
        /// The holder's bank account (who paid the agency).
        #[arg(long, value_parser = parse_account)]
        holder: BankAccount,
    },
    /// Unload value to a bank holder through the card system's own agency.
    Unload {
        #[arg(long, value_parser = parse_card)]
        card: CardId,
        amount: Amount,
        /// The holder's bank account (credited once the LUS confirms).
        #[arg(long, value_parser = parse_account)]
        holder: BankAccount,
    },
    /// Pay at a merchant's purchase device (PSAM), then collect its batch.
    Pay {
        #[arg(long, value_parser = parse_card)]
        card: CardId,
        amount: Amount,
        /// The purchase device's id: 16 hex digits.
        #[arg(long, value_parser = parse_psam)]
        psam: PsamId,
        /// The merchant's bank account the collection server credits.
        #[arg(long, value_parser = parse_account)]
        merchant: BankAccount,
    },
    /// Cardcash to soft cash: unload into coins of the issuer.
    ToPurse {
        #[arg(long, value_parser = parse_card)]
        card: CardId,
        amount: Amount,
        #[command(flatten)]
        issuer: IssuerArg,
        /// The purse file that receives the coins.
        #[arg(long)]
        purse: PathBuf,
        /// Retry this transfer (as printed by a run that did not finish).
        #[arg(long, value_parser = parse_transfer)]
        transfer: Option<TransferId>,
    },
    /// Soft cash to cardcash: redeem a purse's coins onto a load (coins of
    /// exactly the amount; make change with the purse first if needed).
    FromPurse {
        #[arg(long, value_parser = parse_card)]
        card: CardId,
        amount: Amount,
        #[command(flatten)]
        issuer: IssuerArg,
        /// The purse file whose coins are loaded.
        #[arg(long)]
        purse: PathBuf,
        #[arg(long, value_parser = parse_transfer)]
        transfer: Option<TransferId>,
    },
    /// Card to card through the issuer.
    Transfer {
        #[arg(long, value_parser = parse_card)]
        from: CardId,
        #[arg(long, value_parser = parse_card)]
        to: CardId,
        amount: Amount,
        #[command(flatten)]
        issuer: IssuerArg,
        /// Where the value goes as coins if neither card takes it back.
        #[arg(long)]
        purse: Option<PathBuf>,
        #[arg(long, value_parser = parse_transfer)]
        transfer: Option<TransferId>,
    },
    /// Close the LUS's period and settle it with its agency.
    Clear,
    /// Present a card: resolve what it left open, and show it.
    Show {
        #[arg(long, value_parser = parse_card)]
        card: CardId,
    },
}

/// The issuer acting as the agency: through its gateway when it serves,
/// else run in this process.
#[derive(Debug, Args)]
pub struct IssuerArg {
    /// The issuer's directory (as `varietycash issuer init` made it): if an
    /// issuer with its key serves at its configured address, its gateway is
    /// used (signed with DIR/operator.key, TLS pinned to DIR/tls-ca.pem);
    /// otherwise the issuer runs in this process over DIR.
    #[arg(long)]
    pub issuer_dir: PathBuf,
}

fn parse_card(s: &str) -> Result<CardId, String> {
    CardId::from_hex(s).ok_or_else(|| "a card id is 16 hex digits".to_string())
}

fn parse_psam(s: &str) -> Result<PsamId, String> {
    let mut out = [0u8; 8];
    CardId::from_hex(s)
        .map(|id| {
            out.copy_from_slice(id.as_bytes());
            PsamId(out)
        })
        .ok_or_else(|| "a PSAM id is 16 hex digits".to_string())
}

fn parse_transfer(s: &str) -> Result<TransferId, String> {
    let bad = || "a transfer id is 32 hex digits".to_string();
    // Hex digits only (`from_str_radix` would also take a sign).
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out).map_err(|_| bad())?;
    Ok(TransferId(out))
}

fn transfer_hex(id: &TransferId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// What marks a purse journal entry as a card transfer's, with its id.
fn purse_context(id: &TransferId) -> Vec<u8> {
    let mut c = PURSE_CONTEXT_LABEL.to_vec();
    c.extend_from_slice(&id.0);
    c
}

/// The purse's entry for transfer `id`, if one is in flight.
fn purse_entry(wallet: &Purse, id: &TransferId) -> anyhow::Result<Option<JournalEntry>> {
    let context = purse_context(id);
    Ok(wallet
        .in_flight()?
        .into_iter()
        .find(|e| e.context == context))
}

/// Takes coins of exactly `amount` out of circulation in the purse (its
/// journal holds them for transfer `id`), or finds those a previous run took.
fn reserve_coins(
    wallet: &Purse,
    id: &TransferId,
    amount: Amount,
    now: Timestamp,
) -> anyhow::Result<(TxRef, Vec<Coin>)> {
    if let Some(entry) = purse_entry(wallet, id)? {
        return Ok((entry.tx, wallet.reserved_coins(entry.tx)?));
    }
    let coins = match wallet.select(amount, now)? {
        Selection::Exact(coins) => coins,
        Selection::NeedsChange { .. } => bail!(
            "no coins of the purse make exactly {amount}: make change first \
             (varietycash purse change)"
        ),
        Selection::Insufficient { available, .. } => {
            bail!("the purse holds only {available}")
        }
    };
    let tx = wallet.begin(NewTransaction {
        kind: TxKind::Redeem,
        amount,
        reserve: coins.iter().map(Coin::id).collect(),
        step: Step::SessionOpen,
        to: Destination::Issuer,
        message: Vec::new(),
        secrets: Vec::new(),
        context: purse_context(id),
        now,
    })?;
    Ok((tx, coins))
}

/// Puts the coins bought with transfer `id`'s unload into the purse, once.
fn receive_coins(
    wallet: &Purse,
    id: &TransferId,
    amount: Amount,
    coins: Vec<Coin>,
    now: Timestamp,
) -> anyhow::Result<usize> {
    let mut new = Vec::new();
    for c in coins {
        if wallet.coin(c.id())?.is_none() {
            new.push(c);
        }
    }
    if new.is_empty() {
        return Ok(0);
    }
    let tx = match purse_entry(wallet, id)? {
        Some(entry) => entry.tx,
        None => wallet.begin(NewTransaction {
            kind: TxKind::Purchase,
            amount,
            reserve: Vec::new(),
            step: Step::SessionOpen,
            to: Destination::Issuer,
            message: Vec::new(),
            secrets: Vec::new(),
            context: purse_context(id),
            now,
        })?,
    };
    let n = new.len();
    wallet.complete(
        tx,
        Completion {
            spent: Vec::new(),
            revoked: Vec::new(),
            received: new,
            acknowledge: None,
        },
    )?;
    Ok(n)
}

/// The transfer's id: the one to retry, or a new one, printed before
/// anything moves so that a run killed midway can be run again with it.
fn transfer_id(retry: Option<TransferId>) -> TransferId {
    let id = retry.unwrap_or_else(TransferId::random);
    if retry.is_none() {
        println!(
            "transfer {} (if this run does not finish, run it again with --transfer {})",
            transfer_hex(&id),
            transfer_hex(&id)
        );
    }
    id
}

/// Where transfer `id` stands in the card system's journal, if it began.
fn journaled_step(dir: &Path, id: &TransferId) -> anyhow::Result<Option<TransferStep<Vec<Coin>>>> {
    let journal = TransferJournal::open(&dir.join(TRANSFER_JOURNAL_FILE))
        .context("opening the transfer journal")?;
    Ok(journal.step(*id)?)
}

fn card_dir(args: &CardArgs) -> anyhow::Result<PathBuf> {
    args.dir
        .clone()
        .context("the card system's directory is needed: --dir DIR")
}

/// The issuer's directory the LUS is bound to, if any.
fn bound_issuer(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    match std::fs::read_to_string(dir.join(ISSUER_AGENCY_FILE)) {
        Ok(text) => Ok(Some(PathBuf::from(text.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context("reading the agency binding"),
    }
}

/// Binds the LUS to the issuer in `issuer_dir` (first transfer), or checks
/// it is bound to that one.
fn bind_issuer(dir: &Path, system: &CardSystem, issuer_dir: &Path) -> anyhow::Result<()> {
    let wanted = issuer_dir
        .canonicalize()
        .with_context(|| format!("{} does not exist", issuer_dir.display()))?;
    match bound_issuer(dir)? {
        Some(bound) if bound == wanted => Ok(()),
        Some(bound) => bail!(
            "this LUS's agency is the issuer in {}, not {}",
            bound.display(),
            wanted.display()
        ),
        None => {
            if !system.agency.all_finished()?.is_empty() {
                bail!(
                    "this LUS already has loads or unloads with its own agency; \
                     a LUS clears with one agency, so it cannot take transfers"
                );
            }
            ledger::private_file::write_private(
                &dir.join(ISSUER_AGENCY_FILE),
                format!("{}\n", wanted.display()).as_bytes(),
            )
            .context("binding the LUS to the issuer")?;
            Ok(())
        }
    }
}

fn refuse_if_bound(dir: &Path) -> anyhow::Result<()> {
    if let Some(issuer) = bound_issuer(dir)? {
        bail!(
            "this LUS's agency is the issuer in {}: value enters and leaves the cards \
             through from-purse and to-purse",
            issuer.display()
        );
    }
    Ok(())
}

/// The issuer as the card system's agency: reached over its gateway when
/// it serves, else opened in this process.
enum IssuerAgency<'a> {
    Local(CardAgency<'a>),
    Remote(client::card::RemoteAgency),
}

macro_rules! delegate {
    ($self:ident, $a:ident => $e:expr) => {
        match $self {
            IssuerAgency::Local($a) => $e,
            IssuerAgency::Remote($a) => $e,
        }
    };
}

impl card_bridge::agency::Agency for IssuerAgency<'_> {
    fn guarantee(
        &self,
        req: &card_bridge::records::LoadRequest,
    ) -> Result<(), card_bridge::agency::AgencyError> {
        delegate!(self, a => a.guarantee(req))
    }
    fn open_guarantees(
        &self,
        card: &CardId,
    ) -> Result<Vec<card_bridge::records::LoadRequest>, card_bridge::agency::AgencyError> {
        delegate!(self, a => a.open_guarantees(card))
    }
    fn load_committed(
        &self,
        rec: &card_bridge::records::CardTxRecord,
    ) -> Result<(), card_bridge::agency::AgencyError> {
        delegate!(self, a => a.load_committed(rec))
    }
    fn load_rejected(
        &self,
        rec: &card_bridge::records::CardTxRecord,
    ) -> Result<(), card_bridge::agency::AgencyError> {
        delegate!(self, a => a.load_rejected(rec))
    }
    fn unload_committed(
        &self,
        rec: &card_bridge::records::CardTxRecord,
    ) -> Result<(), card_bridge::agency::AgencyError> {
        delegate!(self, a => a.unload_committed(rec))
    }
    fn unload_rejected(
        &self,
        rec: &card_bridge::records::CardTxRecord,
    ) -> Result<(), card_bridge::agency::AgencyError> {
        delegate!(self, a => a.unload_rejected(rec))
    }
    fn finished_records(
        &self,
        lus: LusId,
        period: u32,
    ) -> Result<Vec<card_bridge::records::CardTxRecord>, card_bridge::agency::AgencyError> {
        delegate!(self, a => a.finished_records(lus, period))
    }
    fn settle(
        &self,
        settlement: &card_bridge::records::Settlement,
    ) -> Result<(), card_bridge::agency::AgencyError> {
        delegate!(self, a => a.settle(settlement))
    }
}

impl card_bridge::transfer::SoftCash for IssuerAgency<'_> {
    type Coins = Vec<Coin>;

    fn value_of(&self, coins: &Vec<Coin>) -> Result<Amount, card_bridge::transfer::SoftCashError> {
        delegate!(self, a => a.value_of(coins))
    }
    fn buy_coins_with_unload(
        &self,
        transfer: TransferId,
        unload: &card_bridge::records::CardTxRecord,
    ) -> Result<Vec<Coin>, card_bridge::transfer::SoftCashError> {
        delegate!(self, a => a.buy_coins_with_unload(transfer, unload))
    }
    fn redeem_for_load(
        &self,
        transfer: TransferId,
        coins: &Vec<Coin>,
        load: &card_bridge::records::LoadRequest,
    ) -> Result<(), card_bridge::transfer::SoftCashError> {
        delegate!(self, a => a.redeem_for_load(transfer, coins, load))
    }
}

/// The agency of the issuer in `issuer_dir`: its gateway's if it serves
/// there, else one over the issuer opened in this process (kept in `core`).
fn issuer_agency<'a>(
    issuer_dir: &Path,
    core: &'a mut Option<IssuerCore>,
) -> anyhow::Result<IssuerAgency<'a>> {
    let file = IssuerFile::read(issuer_dir)?;
    let transport = super::common::TransportArgs::default();
    let client_config = super::issuer::operator_client_config(issuer_dir, &transport)?;
    if let Some(url) = super::issuer::serving_issuer(issuer_dir, &file, None, &client_config)? {
        let key = super::issuer::read_operator_key(None, Some(issuer_dir))?;
        let client = client::IssuerClient::new(&url, client_config)?.with_operator(key);
        return Ok(IssuerAgency::Remote(client::card::RemoteAgency::new(
            client,
        )));
    }
    let core = core.insert(open_issuer(issuer_dir)?);
    Ok(IssuerAgency::Local(
        CardAgency::open(core).context("opening the issuer's card agency")?,
    ))
}

/// Opens the issuer of `dir` in this process (when it does not serve), on
/// the log store and bank its `issuer.toml` names, as `issuer serve` would:
/// an issuer whose log is in PostgreSQL or whose bank exchanges files must
/// not be opened over a stray `log.redb` or a simulated bank.
fn open_issuer(dir: &Path) -> anyhow::Result<IssuerCore> {
    let file = IssuerFile::read(dir)?;
    let config = file.issuer_config(dir)?;
    let bank = file.bank(dir)?.as_dyn();
    IssuerCore::open(config, bank).context("opening the issuer (is it serving?)")
}

pub fn run(args: CardArgs) -> anyhow::Result<ExitCode> {
    let dir = card_dir(&args)?;
    let lus = LusId(args.lus);
    let suite = match &args.command {
        CardCommand::Issue {
            suite: SuiteArg::Aes256,
            ..
        } => Suite::Aes256,
        _ => Suite::Tdes,
    };
    if !matches!(args.command, CardCommand::Issue { .. }) && !dir.join("keys.bin").exists() {
        bail!(
            "{} is not a card system (issue a card first: varietycash card issue --dir {} --card ID)",
            dir.display(),
            dir.display()
        );
    }
    let system = CardSystem::open(&dir, lus, suite).context("opening the card system")?;
    let now = Timestamp::now();
    let stop_at = args.stop_at;
    let fault = stop_at.and_then(StopAt::fault);
    match args.command {
        CardCommand::Issue {
            card, max, days, ..
        } => {
            let sc =
                system.issue_card(card, now.plus_secs(days.saturating_mul(SECS_PER_DAY)), max)?;
            println!("card {card} issued: holds at most {max}");
            show(&sc)?;
        }
        CardCommand::Load {
            card,
            amount,
            holder,
        } => {
            refuse_if_bound(&dir)?;
            let rec = system.load(&card, amount, &holder, now)?;
            println!(
                "load of {amount} onto {card} (NT {}): {:?}",
                rec.nt, rec.outcome
            );
        }
        CardCommand::Unload {
            card,
            amount,
            holder,
        } => {
            refuse_if_bound(&dir)?;
            let rec = system.unload(&card, amount, &holder, now)?;
            println!(
                "unload of {amount} from {card} (NT {}): {:?}",
                rec.nt, rec.outcome
            );
        }
        CardCommand::Pay {
            card,
            amount,
            psam,
            merchant,
        } => {
            let mut device = system.psam(psam, &merchant)?;
            system.pay(&card, &mut device, amount, now)?;
            println!("{card} paid {amount} at the device");
            let receipts = system.collect(&mut device)?;
            for r in &receipts {
                println!(
                    "batch {} collected: {} purchases, {} credited to {}",
                    r.batch_no,
                    r.count,
                    r.credited,
                    r.merchant.as_str()
                );
                for p in &r.refused {
                    println!(
                        "  refused: {} by card {} (NT {}): {}",
                        p.amount, p.card, p.nt, p.reason
                    );
                }
            }
            if let Some(p) = receipts.iter().flat_map(|r| &r.refused).next() {
                bail!(
                    "the collection server refused {} by card {} (NT {}): {}; the merchant \
                     is not credited",
                    p.amount,
                    p.card,
                    p.nt,
                    p.reason
                );
            }
        }
        CardCommand::ToPurse {
            card,
            amount,
            issuer,
            purse,
            transfer,
        } => {
            let wallet = super::common::open_purse(&purse)?;
            bind_issuer(&dir, &system, &issuer.issuer_dir)?;
            let id = transfer_id(transfer);
            let out = with_transfers(
                &dir,
                &system,
                &issuer.issuer_dir,
                &[card],
                id,
                |t, cards| {
                    let [sc] = cards else { bail!("one card") };
                    Ok(t.card_to_soft(id, sc, amount, now, fault)?)
                },
            )?;
            match out {
                CardToSoft::Issued(coins) => {
                    stop_if(stop_at, StopAt::BeforePurse, &id);
                    let n = receive_coins(&wallet, &id, amount, coins, now)?;
                    println!(
                        "{amount} unloaded from {card}: {n} coins into {}",
                        purse.display()
                    );
                }
                CardToSoft::Undone => println!("the unload was refused: {card} kept its value"),
            }
        }
        CardCommand::FromPurse {
            card,
            amount,
            issuer,
            purse,
            transfer,
        } => {
            bind_issuer(&dir, &system, &issuer.issuer_dir)?;
            let wallet = super::common::open_purse(&purse)?;
            let id = transfer_id(transfer);
            if purse_entry(&wallet, &id)?.is_none() {
                // The purse finished its part of this transfer (or never had
                // one): the journal's outcome is about coins this run did
                // not reserve, so nothing in the purse may change.
                if let Some(step) = journaled_step(&dir, &id)? {
                    println!(
                        "transfer {} is already finished ({}): nothing to do",
                        transfer_hex(&id),
                        describe_step(&step)
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let (entry, held) = reserve_coins(&wallet, &id, amount, now)?;
            stop_if(stop_at, StopAt::AfterReserve, &id);
            let out = with_transfers(
                &dir,
                &system,
                &issuer.issuer_dir,
                &[card],
                id,
                |t, cards| {
                    let [sc] = cards else { bail!("one card") };
                    Ok(t.soft_to_card(id, sc, &held, now, fault)?)
                },
            )?;
            stop_if(stop_at, StopAt::BeforePurse, &id);
            match out {
                SoftToCard::Loaded(rec) => {
                    let spent = held.iter().map(Coin::id).collect();
                    wallet.complete(
                        entry,
                        Completion {
                            spent,
                            revoked: Vec::new(),
                            received: Vec::new(),
                            acknowledge: None,
                        },
                    )?;
                    println!(
                        "{} loaded onto {card} (NT {}); the coins are spent",
                        rec.amount, rec.nt
                    );
                }
                SoftToCard::Undone(_) => {
                    wallet.abandon(entry)?;
                    println!("the load did not happen: the coins are the purse's again")
                }
            }
        }
        CardCommand::Transfer {
            from,
            to,
            amount,
            issuer,
            purse,
            transfer,
        } => {
            let purse_for_leftovers = purse.map(|p| super::common::open_purse(&p)).transpose()?;
            bind_issuer(&dir, &system, &issuer.issuer_dir)?;
            let id = transfer_id(transfer);
            let out = with_transfers(
                &dir,
                &system,
                &issuer.issuer_dir,
                &[from, to],
                id,
                |t, cards| {
                    let [a, b] = cards else { bail!("two cards") };
                    Ok(t.card_to_card(id, a, b, amount, now, fault)?)
                },
            )?;
            match out {
                CardToCard::Loaded(_) => println!("{amount} moved from {from} to {to}"),
                CardToCard::Undone => println!("the unload was refused: nothing moved"),
                CardToCard::Returned(_) => {
                    println!("{to} refused the load: the value went back onto {from}")
                }
                CardToCard::LeftAsCoins(coins) => {
                    let n = coins.len();
                    let wallet = purse_for_leftovers.as_ref().with_context(|| {
                        format!(
                            "neither card took the value back: run the same command again \
                             with --purse FILE --transfer {} to take it as coins",
                            transfer_hex(&id)
                        )
                    })?;
                    receive_coins(wallet, &id, amount, coins, now)?;
                    println!("neither card took the value back: {n} coins went to the purse");
                }
            }
        }
        CardCommand::Clear => {
            let report = match bound_issuer(&dir)? {
                Some(issuer_dir) => {
                    system.note_all_purchases()?;
                    let mut core = None;
                    let agency = issuer_agency(&issuer_dir, &mut core)?;
                    clear(&system.lus, &agency)?
                }
                None => system.clear()?,
            };
            print_clearing(&report);
            for p in system.collection.refused_purchases()? {
                println!(
                    "purchase refused at collection: {} by card {} (NT {}) at device {}: {}",
                    p.amount,
                    p.card,
                    p.nt,
                    CardId::from_bytes(p.psam.0),
                    p.reason
                );
            }
        }
        CardCommand::Show { card } => {
            let mut sc = system.card(&card)?;
            let resolved = match bound_issuer(&dir)? {
                Some(issuer_dir) => {
                    let mut core = None;
                    let agency = issuer_agency(&issuer_dir, &mut core)?;
                    CardTerminal::new(&system.lus, &agency).resolve(&mut sc)
                }
                None => system.terminal().resolve(&mut sc),
            };
            system.save_card(&sc)?;
            for rec in resolved? {
                println!(
                    "resolved: {:?} of {} (NT {}): {:?}",
                    rec.direction, rec.amount, rec.nt, rec.outcome
                );
            }
            show(&sc)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `op` over the cards `ids` and the transfers with the issuer as the
/// agency; saves every card image afterwards, whatever happened (it is the
/// card's truth), and on failure says how to retry.
fn with_transfers<T>(
    dir: &Path,
    system: &CardSystem,
    issuer_dir: &Path,
    ids: &[CardId],
    id: TransferId,
    op: impl FnOnce(&Transfers<'_, IssuerAgency<'_>>, &mut [SmartCard]) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut core = None;
    let agency = issuer_agency(issuer_dir, &mut core)?;
    let journal = TransferJournal::open(&dir.join(TRANSFER_JOURNAL_FILE))
        .context("opening the transfer journal")?;
    let transfers = Transfers::new(&journal, CardTerminal::new(&system.lus, &agency), &agency);
    // The LUS bounds what a card may unload by its collected purchases too.
    system.note_purchases(ids.iter().copied())?;
    let mut cards = ids
        .iter()
        .map(|c| system.card(c))
        .collect::<Result<Vec<_>, _>>()?;
    let result = op(&transfers, &mut cards);
    if let Err(e) = &result
        && matches!(
            e.downcast_ref::<TransferError>(),
            Some(TransferError::Injected(_))
        )
    {
        crash(&id, e);
    }
    for sc in &cards {
        system.save_card(sc)?;
    }
    result.with_context(|| retry_hint(&id))
}

fn retry_hint(id: &TransferId) -> String {
    format!(
        "transfer {} did not finish: run the same command again with --transfer {}",
        transfer_hex(id),
        transfer_hex(id)
    )
}

fn describe_step(step: &TransferStep<Vec<Coin>>) -> String {
    match step {
        TransferStep::CardLoaded { record } => {
            format!(
                "{} loaded onto {} as NT {}",
                record.amount, record.card, record.nt
            )
        }
        TransferStep::Undone { .. } => "undone".to_string(),
        TransferStep::CoinsIssued { coins } => format!("{} coins issued", coins.len()),
        TransferStep::Unloading { card, amount, .. } => {
            format!("an unload of {amount} from {card} in progress")
        }
        TransferStep::Loading { req, .. } => {
            format!(
                "a load of {} onto {} in progress",
                req.l1.amount, req.l1.card
            )
        }
    }
}

fn show(sc: &SmartCard) -> anyhow::Result<()> {
    let info = sc.info()?;
    println!("card {}", info.card);
    println!(
        "  balance     {} (at most {})",
        info.balance, info.balance_max
    );
    println!(
        "  status      {:?}, expires at {}",
        info.status, info.expiry.0
    );
    println!("  suite       {:?}", info.suite);
    println!("  last NT     {}", info.nt);
    match info.pending {
        Some((direction, nt)) => println!("  pending     {direction:?} NT {nt}"),
        None => println!("  pending     none"),
    }
    Ok(())
}

fn print_clearing(report: &ClearingReport) {
    let s = &report.settlement;
    println!(
        "LUS {} period {} cleared: loads {}, unloads {}; paid to the LUS {}, received from it {}",
        s.lus, s.period, s.loads, s.unloads, s.paid_to_lus, s.received_from_lus
    );
    if !report.carried_forward.is_empty() {
        println!(
            "{} open records carried into the next period",
            report.carried_forward.len()
        );
    }
    for (card, s) in &report.cards_overspent {
        println!(
            "card {card} does not add up: loaded {}, unloaded {}, spent {} (collected)",
            s.loaded, s.unloaded, s.purchases_collected
        );
    }
    for c in &report.refused_claims {
        println!(
            "refused claim of card {} (NT {}, {:?} of {}): {}",
            c.card, c.nt, c.direction, c.amount, c.reason
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_ids_print_and_parse_back() {
        let id = TransferId::random();
        assert_eq!(parse_transfer(&transfer_hex(&id)), Ok(id));
        assert!(parse_transfer("zz").is_err());
        assert!(parse_transfer(&"é".repeat(16)).is_err());
        // A sign is no hex digit: one id has one spelling.
        assert!(parse_transfer(&format!("+f{}", "0".repeat(30))).is_err());
    }

    #[test]
    fn card_and_psam_ids_are_sixteen_hex_digits() {
        assert_eq!(
            parse_card("0102030405060708").map(|c| *c.as_bytes()),
            Ok([1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert!(parse_card("0102").is_err());
        assert_eq!(parse_psam("0000000000000009").map(|p| p.0[7]), Ok(9));
    }
}
