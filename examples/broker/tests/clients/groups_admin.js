// kafkajs's group admin calls: listGroups and describeGroups on a running
// group, then setOffsets and deleteGroups on the group once its member has
// left (kafkajs
// describes the group first and needs it Empty; before DescribeGroups was
// served this failed with "The Kafka server does not support the
// requested API version"), read back with fetchOffsets. Prints
// "kafkajs groups ok".
const { Kafka, logLevel } = require('kafkajs')

const [broker, topic] = process.argv.slice(2)
const groupId = 'kjs-' + topic
const kafka = new Kafka({ clientId: 'kjs-admin', brokers: [broker], logLevel: logLevel.NOTHING })

function check (ok, what) {
  if (!ok) throw new Error('failed: ' + what)
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages: [0, 1, 2, 3].map(i => ({ value: 'm' + i, partition: i % 2 })) })
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let read = 0
  await consumer.run({ eachMessage: async () => { read += 1 } })
  const deadline = Date.now() + 30000
  while (read < 4 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  check(read === 4, 'the consumer read 4, read ' + read)

  const { groups } = await admin.listGroups()
  check(groups.some(g => g.groupId === groupId && g.protocolType === 'consumer'), 'listed: ' + JSON.stringify(groups))
  const described = (await admin.describeGroups([groupId])).groups[0]
  check(described.state === 'Stable', 'state ' + described.state)
  check(described.members.length === 1 && described.members[0].clientId === 'kjs-admin', JSON.stringify(described.members))

  await consumer.disconnect()
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '1' }, { partition: 1, offset: '2' }] })
  const [fetched] = await admin.fetchOffsets({ groupId, topics: [topic] })
  const byPartition = Object.fromEntries(fetched.partitions.map(p => [p.partition, p.offset]))
  check(byPartition[0] === '1' && byPartition[1] === '2', 'offsets ' + JSON.stringify(byPartition))
  const deleted = await admin.deleteGroups([groupId])
  check(deleted.length === 1 && deleted[0].errorCode === 0, 'deleted ' + JSON.stringify(deleted))
  const after = (await admin.describeGroups([groupId])).groups[0]
  check(after.state === 'Dead', 'after deletion ' + after.state)
  await admin.disconnect()
  console.log('kafkajs groups ok')
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
