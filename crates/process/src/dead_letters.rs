//! What the dead-letter recorder writes: the job or AI task a parked message
//! names ends failed, with the reason (`foxflow_messaging::dead_letters`).

use foxflow_domain::Text;
use foxflow_domain::messages::Message;
use foxflow_messaging::dead_letters::DeadLetterSink;
use foxflow_storage::ai::{self, TaskStatus};
use foxflow_storage::{DbPool, StorageError, jobs, pool};
use futures::FutureExt;
use futures::future::BoxFuture;

/// Records into the database: an import job becomes `error`, an AI task
/// `failed`, each only if it is not final already (then the record is a
/// no-op: the job ended on its own before its message was parked).
pub struct RecordInDatabase(pub DbPool);

impl DeadLetterSink for RecordInDatabase {
    fn record(&self, message: Message, reason: Text) -> BoxFuture<'static, Result<(), String>> {
        let pool = self.0.clone();
        async move {
            let result: Result<(), StorageError> = async {
                let mut conn = pool::conn(&pool).await?;
                match message {
                    Message::ImportRequested { job_id, .. } => {
                        tracing::warn!(%job_id, %reason, "import's message left its queue; the job ends");
                        jobs::fail(&mut conn, job_id, &reason).await
                    }
                    Message::AiGenerationRequested { task_id, .. } => {
                        tracing::warn!(%task_id, %reason, "AI task's message left its queue; the task ends");
                        // AI tasks keep one message (English) until they get a column for the other.
                        ai::finish_task(&mut conn, task_id, TaskStatus::Failed, &reason.en)
                            .await
                            .map(|_| ())
                    }
                }
            }
            .await;
            result.map_err(|e| e.to_string())
        }
        .boxed()
    }
}
