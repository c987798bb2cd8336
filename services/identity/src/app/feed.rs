//! The change feed as a caller watches it: events of persons in its scope, from a cursor or
//! from the head, until the server drains.

use std::sync::Arc;

use bangfu_platform::auth::Principal;
use bangfu_platform::error::Problem;
use bangfu_platform::outbox::{self, FeedEvent, FeedItem, Start};
use tokio_stream::Stream;

use super::Identity;

impl Identity {
    pub async fn watch_changes(
        &self,
        caller: &Principal,
        start: Start,
    ) -> Result<impl Stream<Item = Result<FeedItem, Problem>> + use<>, Problem> {
        // A watcher sees a change when the person was in its scope before or after it.
        let scope = caller.scope.clone();
        let visible: Arc<dyn Fn(&FeedEvent) -> bool + Send + Sync> =
            Arc::new(move |event: &FeedEvent| event.regions.iter().any(|region| scope.contains(region)));
        outbox::watch(self.store.db.clone(), start, visible, self.feed, self.shutdown.clone()).await
    }
}
