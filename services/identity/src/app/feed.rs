//! The change feed as a caller watches it: events of persons in its scope, from a cursor or
//! from the head, until the server drains.

use std::sync::Arc;

use bangfu_platform::auth::Principal;
use bangfu_platform::error::Problem;
use bangfu_platform::outbox::{self, FeedEvent, FeedItem, Start};
use tokio_stream::Stream;

use super::Identity;
use crate::domain::ChangeKind;

impl Identity {
    /// The feed from `start`: the changes the caller may see, of `kinds` (empty: every kind).
    pub async fn watch_changes(
        &self,
        caller: &Principal,
        start: Start,
        kinds: &[ChangeKind],
    ) -> Result<impl Stream<Item = Result<FeedItem, Problem>> + use<>, Problem> {
        // A watcher sees a change when the person was in its scope before or after it.
        let scope = caller.scope.clone();
        let kinds: Vec<&'static str> = kinds.iter().map(|kind| kind.as_str()).collect();
        let visible: Arc<dyn Fn(&FeedEvent) -> bool + Send + Sync> = Arc::new(move |event: &FeedEvent| {
            (kinds.is_empty() || kinds.contains(&event.kind.as_str()))
                && event.regions.iter().any(|region| scope.contains(region))
        });
        outbox::watch(self.store.db.clone(), start, visible, self.feed, self.shutdown.clone()).await
    }
}
