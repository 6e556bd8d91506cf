//! `workflow serve --store PATH [--bind ADDR]` (`--store` falls back to `WORKFLOW_STORE`): the
//! web view of a store, read-only (the command has no engine to act on; an application that
//! wants actions mounts `workflow_web::router` beside its engine).

use clap::{Arg, ArgMatches, Command};
use workflow_runtime::inspect::Inspector;
use workflow_web::WebConfig;

pub(crate) fn command() -> Command {
    Command::new("serve")
        .about("Serves the web view of a store (read-only): workflows, live diagrams, instances, timelines")
        .arg(
            Arg::new("store")
                .long("store")
                .env(crate::inspect::STORE_ENV)
                .required(true)
                .value_name("PATH")
                .help("The store: a SQLite file's path"),
        )
        .arg(
            Arg::new("bind")
                .long("bind")
                .default_value("127.0.0.1:8080")
                .value_name("ADDR:PORT")
                .help("Where to listen (port 0: any free port); other hosts than 127.0.0.1 reach it only if told"),
        )
}

/// Serves until the process is stopped; an error (the store, the address) is one line.
pub(crate) fn run(m: &ArgMatches) -> Result<String, String> {
    let store = m.get_one::<String>("store").cloned().unwrap_or_default();
    let bind = m.get_one::<String>("bind").cloned().unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let inspector = Inspector::open(&store).await.map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|e| format!("{bind}: {e}"))?;
        let address = listener.local_addr().map_err(|e| format!("{bind}: {e}"))?;
        // The first line says where (with port 0, which port): scripts and tests read it.
        println!("serving {store} at http://{address}/ (read-only)");
        workflow_web::serve(listener, WebConfig::new(inspector))
            .await
            .map_err(|e| format!("{address}: {e}"))?;
        Ok(String::new())
    })
}
