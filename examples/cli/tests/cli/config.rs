//! Configuration: `~/.wskprops`, `WSK_CONFIG_FILE`, the `WHISK_*` variables, the global flags and
//! `property set/get/unset`.

use crate::support::{GUEST, Home, Platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn property_set_writes_wskprops_that_later_commands_use() {
    let p = Platform::start().await;
    let home = Home::empty();
    let host = p.apihost();

    let out = home
        .run(&[
            "property",
            "set",
            "--apihost",
            &host,
            "--auth",
            GUEST,
            "--namespace",
            "guest",
        ])
        .await;
    assert_eq!(
        out.ok(),
        format!(
            "ok: whisk auth set. Run 'faas property get --auth' to see the new value.\n\
             ok: whisk API host set to {host}\n\
             ok: whisk namespace set to guest\n"
        )
    );
    let text = std::fs::read_to_string(home.wskprops()).unwrap();
    assert_eq!(
        text,
        format!("AUTH={GUEST}\nAPIHOST={host}\nNAMESPACE=guest\n")
    );

    // The file alone configures later commands.
    let out = home.run(&["action", "list"]).await;
    assert_eq!(out.ok(), "actions\n");

    let out = home.run(&["property", "get", "--auth", "-o", "raw"]).await;
    assert_eq!(out.ok(), format!("{GUEST}\n"));
    let out = home.run(&["property", "get", "--apihost"]).await;
    assert_eq!(out.ok(), format!("whisk API host\t\t{host}\n"));
    let out = home.run(&["property", "get", "--namespace"]).await;
    assert_eq!(out.ok(), "whisk namespace\t\tguest\n");

    let out = home
        .run(&["property", "unset", "--auth", "--namespace"])
        .await;
    assert_eq!(
        out.ok(),
        "ok: whisk auth unset.\nok: whisk namespace unset; the default value of _ will be used.\n"
    );
    assert_eq!(
        std::fs::read_to_string(home.wskprops()).unwrap(),
        format!("APIHOST={host}\n")
    );
    let out = home.run(&["action", "list"]).await;
    assert_eq!(
        out.fails(2),
        "error: Unable to obtain the list of actions for namespace 'default': Authorization key is not configured (--auth is required)"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn property_get_shows_everything_as_wsk_does() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    let out = home.run(&["property", "get"]).await;
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        out.ok(),
        format!(
            "whisk API host\t\t{host}\n\
             whisk auth\t\t{GUEST}\n\
             whisk namespace\t\tguest\n\
             client cert\t\t\n\
             Client key\t\t\n\
             whisk API version\tv1\n\
             whisk CLI version\t{version}\n\
             whisk API build\t\tfaas-{version}\n\
             whisk API build number\t{version}\n",
            host = p.apihost()
        )
    );
    let out = home.run(&["property", "get", "--all", "-o", "raw"]).await;
    assert_eq!(
        out.fails(1),
        "error: --output|-o raw only supported with specific property type"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsk_config_file_wins_over_home_and_keeps_other_lines() {
    let p = Platform::start().await;
    let mut home = Home::empty();
    // A home file pointing nowhere useful: it must not be read.
    home.write_props("APIHOST=http://127.0.0.1:1\nAUTH=nobody:nothing\n");
    let custom = home.path().join("custom.props");
    std::fs::write(
        &custom,
        format!(
            "# shared with wsk\nAPIHOST={}\nAUTH={GUEST}\nEXTRA=kept\n",
            p.apihost()
        ),
    )
    .unwrap();
    home.env("WSK_CONFIG_FILE", custom.to_str().unwrap());
    assert_eq!(home.run(&["action", "list"]).await.ok(), "actions\n");

    home.run(&["property", "set", "--apiversion", "v1"])
        .await
        .ok();
    let text = std::fs::read_to_string(&custom).unwrap();
    assert_eq!(
        text,
        format!(
            "# shared with wsk\nAPIHOST={}\nAUTH={GUEST}\nEXTRA=kept\nAPIVERSION=v1\n",
            p.apihost()
        )
    );
    // The home file was not touched.
    assert_eq!(
        std::fs::read_to_string(home.wskprops()).unwrap(),
        "APIHOST=http://127.0.0.1:1\nAUTH=nobody:nothing\n"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_and_environment_override_the_file() {
    let p = Platform::start().await;
    let mut home = Home::empty();
    home.write_props("APIHOST=http://127.0.0.1:1\nAUTH=nobody:nothing\n");
    // Flags win over the file.
    let out = home
        .run(&["action", "list", "--apihost", &p.apihost(), "--auth", GUEST])
        .await;
    assert_eq!(out.ok(), "actions\n");
    // Global flags go anywhere, before the command too.
    let out = home
        .run(&["--apihost", &p.apihost(), "-u", GUEST, "namespace", "list"])
        .await;
    assert_eq!(out.ok(), "namespaces\nguest\n");
    // WHISK_APIHOST and WHISK_AUTH win over the file.
    home.env("WHISK_APIHOST", &p.apihost());
    home.env("WHISK_AUTH", GUEST);
    assert_eq!(home.run(&["action", "list"]).await.ok(), "actions\n");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_host_without_scheme_means_https() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    // The platform speaks plain HTTP, so https to the same address cannot work.
    let bare = p.addr.to_string();
    let out = home.run(&["action", "list", "--apihost", &bare]).await;
    let line = out.fails(3);
    assert!(
        line.starts_with(&format!(
            "error: Unable to obtain the list of actions for namespace 'default': GET https://{bare}/api/v1/namespaces/_/actions: "
        )),
        "{line}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_api_host_is_a_clear_error() {
    let home = Home::empty();
    let out = home.run(&["action", "list", "--auth", GUEST]).await;
    assert_eq!(
        out.fails(1),
        "error: The API host is not valid: An API host must be provided."
    );
    // An empty WSK_CONFIG_FILE means no file at all, as in wsk.
    let mut home = Home::empty();
    home.write_props("APIHOST=http://127.0.0.1:1\n");
    home.env("WSK_CONFIG_FILE", "");
    let out = home.run(&["action", "list", "--auth", GUEST]).await;
    assert_eq!(
        out.fails(1),
        "error: The API host is not valid: An API host must be provided."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_api_host_is_not_written() {
    let home = Home::empty();
    home.write_props("AUTH=a:b\n");
    let out = home.run(&["property", "set", "--apihost", "http://"]).await;
    let line = out.fails(1);
    assert!(
        line.starts_with(
            "error: Unable to set API host value; the API host value 'http://' is invalid:"
        ),
        "{line}"
    );
    assert_eq!(
        std::fs::read_to_string(home.wskprops()).unwrap(),
        "AUTH=a:b\n"
    );
}
