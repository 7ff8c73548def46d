//! A pool of 5 database connections serves 50 concurrent requests that each keep a long
//! response open, because no request keeps a connection while its response streams.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use common::{PASSWORD, app_on, in_process_caches, seed_tenants};
use houston_control_plane::{ApiError, AppState, AuthenticatedUser, IdentityConfig};

/// How long each response stays open.
const HOLD: Duration = Duration::from_millis(1500);
const REQUESTS: usize = 50;

/// Authorizes (store reads on a cache miss), lists the caller's agents (always a store
/// read), then streams for [`HOLD`] without touching the store.
async fn slow_stream(State(state): State<AppState>, caller: AuthenticatedUser, Path(agent): Path<String>) -> Result<Response, ApiError> {
    let agent = state.authorize_agent(&caller, &agent, "test.stream").await?;
    let agents = state.store.list_usable_agents(&caller.user_id, None).await?;
    let first = format!("agent {} of {}\n", agent.slug, agents.len());
    let stream = futures::stream::unfold(0, move |step| {
        let first = first.clone();
        async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(first), 1)),
                1 => {
                    tokio::time::sleep(HOLD).await;
                    Some((Ok("done\n".to_owned()), 2))
                }
                _ => None,
            }
        }
    });
    Ok(Response::new(Body::from_stream(stream)))
}

#[tokio::test]
async fn five_connections_serve_fifty_streams() {
    let Some(store) = houston_store::testing::postgres_store(5).await.unwrap() else {
        return;
    };
    let app = app_on(store, IdentityConfig::default(), in_process_caches()).await;
    seed_tenants(&app).await;
    let token = app.login("juan@acme.test", PASSWORD).await;

    let routes = axum::Router::new().route("/slow/{agent}", axum::routing::get(slow_stream)).with_state(app.state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });

    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut handles = Vec::new();
    for _ in 0..REQUESTS {
        let request = client.get(format!("http://{address}/slow/hr")).bearer_auth(&token);
        handles.push(tokio::spawn(async move {
            let response = request.send().await.expect("request failed");
            let status = response.status();
            (status, response.text().await.expect("reading the body failed"))
        }));
    }
    for handle in handles {
        let (status, body) = handle.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, "agent hr of 1\ndone\n");
    }
    let elapsed = started.elapsed();
    println!("{REQUESTS} streams over 5 connections finished in {elapsed:?}");
    // Holding a connection per stream would need 10 rounds of HOLD (15 s); the pool's 5 s
    // acquire timeout would fail requests long before that.
    assert!(elapsed < HOLD * 4, "took {elapsed:?}");
}
