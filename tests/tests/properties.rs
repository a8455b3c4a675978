//! Application properties (5.0) pass through the broker unchanged: Payload Format Indicator,
//! Content Type, Response Topic, Correlation Data and User Properties (order and duplicates
//! kept); and a payload declared UTF-8 that is not is refused (Tern).

use bytes::Bytes;
use tern_broker::protocol::{QoS, ReasonCode};
use tern_e2e::clients::{
    mosquitto_pub, paho, publish_packet, skip_on_mosquitto, start_broker, MosquittoSub,
    ProtocolVersion, RawClient, SubOptions,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn paho_application_properties_arrive_unchanged_v5() {
    let broker = start_broker();

    let result = paho("properties.py", broker.port(), V5, &[]).await;

    let props = &result["received"]["properties"];
    assert_eq!(props["PayloadFormatIndicator"], 1, "{result}");
    assert_eq!(props["ContentType"], "application/json", "{result}");
    assert_eq!(props["ResponseTopic"], "paho/props/reply", "{result}");
    assert_eq!(props["CorrelationData"], "0001636f7272", "{result}");
    assert_eq!(
        props["UserProperty"],
        serde_json::json!([["origin", "paho"], ["origin", "again"], ["k", "v"]]),
        "order and duplicates kept: {result}"
    );
    let expiry = props["MessageExpiryInterval"].as_u64().expect("expiry");
    assert!((3599..=3600).contains(&expiry), "{result}");
}

#[tokio::test]
async fn raw_request_response_properties_arrive_unchanged_v5() {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), V5, "responder").await;
    subscriber.subscribe("req/t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), V5, "requester").await;
    let mut request = publish_packet("req/t", "ping", QoS::AtLeastOnce);
    request.properties.response_topic = Some("resp/requester".into());
    request.properties.correlation_data = Some(Bytes::from_static(&[0, 1, 2, 255]));
    request.properties.content_type = Some("text/plain".into());
    request.properties.payload_format_indicator = Some(1);
    request.properties.user_properties = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
    let sent = request.properties.clone();

    publisher.publish_with(request).await;

    let received = subscriber.expect_publish().await.properties;
    assert_eq!(received.response_topic, sent.response_topic);
    assert_eq!(received.correlation_data, sent.correlation_data);
    assert_eq!(received.content_type, sent.content_type);
    assert_eq!(
        received.payload_format_indicator,
        sent.payload_format_indicator
    );
    assert_eq!(received.user_properties, sent.user_properties);
}

#[tokio::test]
async fn mosquitto_sub_prints_properties_set_by_mosquitto_pub_v5() {
    let broker = start_broker();
    let options = SubOptions::new(V5, "cli/props").format("%C|%R|%P|%p");
    let subscriber = MosquittoSub::spawn(broker.port(), &options).await;

    mosquitto_pub(
        broker.port(),
        V5,
        &[
            "-t",
            "cli/props",
            "-m",
            "body",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "response-topic",
            "cli/reply",
            "-D",
            "publish",
            "user-property",
            "key",
            "value",
        ],
    )
    .await;

    assert_eq!(
        subscriber.messages().await,
        ["text/plain|cli/reply|key:value|body"]
    );
}

#[tokio::test]
async fn payload_declared_utf8_but_invalid_is_refused_with_0x99_v5() {
    if skip_on_mosquitto("Mosquitto 2.0 does not validate payloads declared UTF-8") {
        return;
    }
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), V5, "sub").await;
    subscriber.subscribe("pf/t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), V5, "pub").await;
    let mut bad = publish_packet("pf/t", &[0xFF, 0xFE][..], QoS::AtLeastOnce);
    bad.properties.payload_format_indicator = Some(1);

    let reason = publisher.publish_with(bad).await;
    publisher
        .publish("pf/t", "sentinel", QoS::AtLeastOnce, false)
        .await;

    assert_eq!(reason, ReasonCode::PayloadFormatInvalid, "PUBACK reason");
    let first = subscriber.expect_publish().await;
    assert_eq!(
        &first.payload[..],
        b"sentinel",
        "refused message is not routed"
    );
}
