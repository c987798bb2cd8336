//! A fund stored before its balances moved into rows of their own (migration 206) keeps them.

use bangfu_platform::db::{Backend, Migrations};
use bangfu_platform::testing::TestDatabase;
use bangfu_subsidy_payment::{MIGRATIONS, store};

/// The migrations before 206.
fn before_balances() -> Migrations {
    let upto = |files: &'static [bangfu_platform::db::MigrationFile]| {
        let end = files.iter().position(|f| f.version == 206).expect("migration 206");
        &files[..end]
    };
    Migrations {
        sqlite: upto(MIGRATIONS.sqlite),
        postgres: upto(MIGRATIONS.postgres),
    }
}

async fn a_fund_keeps_its_balances_across_the_move(backend: Backend) {
    let before = before_balances();
    let test = match backend {
        Backend::Sqlite => TestDatabase::sqlite(&before).await,
        Backend::Postgres => TestDatabase::postgres(&before).await,
    };
    sqlx::query(
        "INSERT INTO funds (id, display_name, fund_source, region_prefix, year, budget_document, budget_fen, \
         reserved_fen, payable_fen, consumed_fen, create_subject, created_us, revision) \
         VALUES ('f1', '枣庄就业补助资金', 'employment_subsidy', '3704', 2025, '枣财社〔2025〕1号', 1000000, 300000, \
         100000, 50000, 'finance', 1, 3)",
    )
    .execute(test.db.pool())
    .await
    .expect("a fund as 205 stored it");
    sqlx::query(
        "INSERT INTO ledger_entries (fund_id, seq, kind, debit_account, credit_account, amount_fen, document, \
         entry_date, subject, recorded_us) VALUES ('f1', 1, 'reserve', 'reserved', 'available', 300000, 'claims/1', \
         '2025-03-01', 'finance', 1)",
    )
    .execute(test.db.pool())
    .await
    .expect("its journal");

    let report = test.db.migrate(&MIGRATIONS).await.expect("migration 206");
    assert_eq!(report.applied_now.first(), Some(&206), "{:?}", report.applied_now);

    let mut conn = test.db.acquire().await.expect("connection");
    let fund = store::get_fund(&mut conn, "f1").await.expect("read").expect("the fund");
    assert_eq!(
        (fund.budget, fund.reserved, fund.payable, fund.consumed, fund.revision),
        (1_000_000, 300_000, 100_000, 50_000, 3)
    );
    assert_eq!(fund.available(), 550_000);
    assert!(
        !store::reserve(&mut conn, "f1", 550_001).await.expect("reserve"),
        "no overdraft"
    );
    assert!(store::reserve(&mut conn, "f1", 550_000).await.expect("reserve"));
    let orphan = sqlx::query(
        "INSERT INTO ledger_entries (fund_id, seq, kind, debit_account, credit_account, amount_fen, document, \
         entry_date, subject, recorded_us) VALUES ('f2', 1, 'reserve', 'reserved', 'available', 1, 'claims/2', \
         '2025-03-01', 'finance', 1)",
    )
    .execute(&mut *conn)
    .await;
    assert!(orphan.is_err(), "a journal entry of no fund is still refused");
}

#[tokio::test]
async fn a_fund_keeps_its_balances_across_the_move_on_sqlite() {
    a_fund_keeps_its_balances_across_the_move(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_fund_keeps_its_balances_across_the_move_on_postgres() {
    a_fund_keeps_its_balances_across_the_move(Backend::Postgres).await;
}
