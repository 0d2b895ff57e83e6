// kafkajs's transactions: a transactional producer commits one
// transaction and aborts the next, then sends a consumer group's offsets
// with a third (sendOffsets); a consumer (read_committed, kafkajs's
// default) reads exactly the committed records and the group's offsets
// are those the committed transaction carried. Prints
// "kafkajs transactions ok".
const { Kafka, logLevel } = require('kafkajs')

const [broker, topic] = process.argv.slice(2)
const kafka = new Kafka({ clientId: 'kjs-txn', brokers: [broker], logLevel: logLevel.NOTHING })

function check (ok, what) {
  if (!ok) throw new Error('failed: ' + what)
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
  const producer = kafka.producer({
    transactionalId: 'kjs-' + topic,
    idempotent: true,
    maxInFlightRequests: 1
  })
  await producer.connect()
  let txn = await producer.transaction()
  await txn.send({ topic, messages: [0, 1, 2, 3].map(i => ({ value: 'kept' + i, partition: i % 2 })) })
  await txn.commit()
  txn = await producer.transaction()
  await txn.send({ topic, messages: [0, 1, 2, 3].map(i => ({ value: 'dropped' + i, partition: i % 2 })) })
  await txn.abort()
  // A group's offsets committed with a transaction.
  const groupId = 'kjs-txn-' + topic
  txn = await producer.transaction()
  await txn.send({ topic, messages: [{ value: 'last', partition: 0 }] })
  await txn.sendOffsets({
    consumerGroupId: groupId,
    topics: [{ topic, partitions: [{ partition: 0, offset: '1' }, { partition: 1, offset: '1' }] }]
  })
  await txn.commit()
  await producer.disconnect()
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
  const stored = offsets[0].partitions.map(p => p.offset).sort()
  check(JSON.stringify(stored) === '["1","1"]', 'offsets sent with the transaction: ' + JSON.stringify(stored))

  const consumer = kafka.consumer({ groupId: 'kjs-reader-' + topic })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out with ' + JSON.stringify(got))), 20000)
    consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value.toString())
        if (got.length >= 5) {
          clearTimeout(timer)
          // A moment more: nothing aborted may follow.
          setTimeout(resolve, 1000)
        }
      }
    })
  })
  await consumer.disconnect()
  got.sort()
  check(JSON.stringify(got) === JSON.stringify(['kept0', 'kept1', 'kept2', 'kept3', 'last']), 'read ' + JSON.stringify(got))
  await admin.disconnect()
  console.log('kafkajs transactions ok')
}

main().catch(e => { console.error(e); process.exit(1) })
