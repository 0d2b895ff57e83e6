// kafkajs on SASL/OAUTHBEARER with signed tokens its oauthBearerProvider
// reads from a token file a sidecar keeps fresh (each token lives
// LIFETIME ms). The broker bounds each session by its token's expiry, so
// kafkajs must re-authenticate on its connections (KIP-368) with a fresh
// token; a producer sends a record every 100 ms for about three token
// lifetimes. Every send must succeed; the Rust test beside this checks
// how many connections the broker accepted.
// Arguments: SASL_PLAINTEXT address, topic, token file, LIFETIME ms.
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const [addr, topic, tokenFile, lifetimeMs] = process.argv.slice(2);

async function main() {
  const lifetime = Number(lifetimeMs);
  const kafka = new Kafka({
    brokers: [addr],
    sasl: {
      mechanism: 'oauthbearer',
      // The file holds the token, then its expiry.
      oauthBearerProvider: async () => ({
        value: fs.readFileSync(tokenFile, 'utf8').split('\n')[0],
      }),
    },
    // Renew when less than half the lifetime is left.
    reauthenticationThreshold: lifetime / 2,
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer();
  await producer.connect();
  const end = Date.now() + 3 * lifetime;
  let sent = 0;
  while (Date.now() < end) {
    await producer.send({ topic, messages: [{ value: `record ${sent}` }] });
    sent += 1;
    await new Promise((r) => setTimeout(r, 100));
  }
  await producer.disconnect();
  console.log('oauth ok', sent);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
