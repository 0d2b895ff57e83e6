// kafkajs re-authenticating its SASL sessions on the connections it has
// (KIP-368): the broker gives each authentication a lifetime of LIFETIME
// ms (SCRAM: the listener's; OAUTHBEARER: its token's, which the
// oauthBearerProvider reads from a token file a sidecar keeps fresh); a
// producer sends a record every 100 ms for about three lifetimes. Every
// send must succeed; the Rust test beside this checks the broker accepted
// no more connections than kafkajs keeps.
// Arguments: SASL_PLAINTEXT address, topic, mechanism (SCRAM-SHA-256 or
// OAUTHBEARER), credential (user:password, or the token file: the token,
// then its expiry), LIFETIME ms.
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const [addr, topic, mechanism, credential, lifetimeMs] = process.argv.slice(2);

function sasl() {
  if (mechanism === 'OAUTHBEARER') {
    return {
      mechanism: 'oauthbearer',
      oauthBearerProvider: async () => ({
        value: fs.readFileSync(credential, 'utf8').split('\n')[0],
      }),
    };
  }
  const [username, password] = credential.split(':');
  return { mechanism: mechanism.toLowerCase(), username, password };
}

async function main() {
  const lifetime = Number(lifetimeMs);
  const kafka = new Kafka({
    brokers: [addr],
    sasl: sasl(),
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
  console.log('reauth ok', sent);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
