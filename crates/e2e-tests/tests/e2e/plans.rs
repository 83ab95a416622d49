//! The plans of an import batch's statements, read with `EXPLAIN`: a batch
//! must look its rows up by key whatever the table's statistics say.

use foxflow_storage::entities::{EntrepriseRow, merge_plan};
use foxflow_testkit::{TestApp, TestOptions};

/// A new directory's first batches were planned against an empty
/// `entreprises`: the planner then scanned the table once per staged row.
/// With four imports filling it at the same time, one batch took 70 s and
/// more (the scaling benchmark: 43 s for 4 × 100,000 rows, 6 s for 2).
#[tokio::test]
async fn a_batch_looks_entreprises_up_by_siren_even_when_the_table_is_empty() {
    let app = TestApp::spawn_with(TestOptions {
        api: false,
        import_worker: false,
        ..TestOptions::default()
    })
    .await;
    // Statistics that say "empty", as after the first import's VACUUM.
    app.pg()
        .await
        .batch_execute("VACUUM ANALYZE entreprises")
        .await
        .unwrap();
    let rows: Vec<EntrepriseRow> = (0..5_000)
        .map(|i| EntrepriseRow {
            siren: format!("{:09}", 300_000_000 + i),
            nom: format!("Entreprise {i}"),
            ..EntrepriseRow::default()
        })
        .collect();
    let pool = foxflow_storage::build_pool(&app.database_url, 1, "test").unwrap();
    let mut conn = foxflow_storage::pool::conn(&pool).await.unwrap();
    let plan = merge_plan(&mut conn, &rows).await.unwrap();
    let text = plan.join("\n");
    assert!(
        text.contains("Index Scan using entreprises_siren_key on entreprises e"),
        "the staged rows are not looked up through the siren index:\n{text}"
    );
    assert!(
        !text.contains("Seq Scan on entreprises"),
        "the batch scans the whole table:\n{text}"
    );
    // Nothing was written.
    assert_eq!(crate::exports::count(&app, "entreprises").await, 0);
}
